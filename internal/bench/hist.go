package bench

import (
	"math/bits"
	"time"
)

// subBits is the number of mantissa bits a histogram bucket keeps: 2^7 = 128
// buckets per power of two, so a bucket is at most 1/128 (0.8%) of its lower
// bound wide and its midpoint is within 0.4% of any value in it.
const subBits = 7

const (
	subBuckets = 1 << subBits
	// numBuckets covers every int64 nanosecond count.
	numBuckets = (64 - subBits) * subBuckets
)

// Histogram records durations in log-linear buckets (exact below 128 ns,
// then 128 buckets per power of two): quantiles are good to better than 1%
// whatever the number of samples, in a fixed 58 KiB. The zero value is
// ready to use; a Histogram is not safe for concurrent use, so each load
// worker keeps its own and they are merged afterwards.
type Histogram struct {
	counts   []uint64
	n        uint64
	sum      time.Duration
	min, max time.Duration
}

// bucketOf is the bucket of a non-negative value.
func bucketOf(v uint64) int {
	if v < subBuckets {
		return int(v)
	}
	shift := bits.Len64(v) - subBits - 1
	return (shift+1)*subBuckets + int(v>>shift) - subBuckets
}

// bucketBounds is the range [lo, hi] of values in bucket i.
func bucketBounds(i int) (lo, hi uint64) {
	if i < subBuckets {
		return uint64(i), uint64(i)
	}
	shift := i/subBuckets - 1
	m := uint64(i%subBuckets + subBuckets)
	return m << shift, (m+1)<<shift - 1
}

// Record adds one duration; negative ones count as zero.
func (h *Histogram) Record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	if h.counts == nil {
		h.counts = make([]uint64, numBuckets)
	}
	h.counts[bucketOf(uint64(d))]++
	if h.n == 0 || d < h.min {
		h.min = d
	}
	if d > h.max {
		h.max = d
	}
	h.n++
	h.sum += d
}

// Merge adds every sample of o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o == nil || o.n == 0 {
		return
	}
	if h.counts == nil {
		h.counts = make([]uint64, numBuckets)
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.n += o.n
	h.sum += o.sum
}

// Count is the number of samples.
func (h *Histogram) Count() uint64 { return h.n }

// Max is the largest sample, exactly.
func (h *Histogram) Max() time.Duration { return h.max }

// Min is the smallest sample, exactly.
func (h *Histogram) Min() time.Duration { return h.min }

// Mean is the average sample.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return h.sum / time.Duration(h.n)
}

// Quantile is the q-quantile (0 < q <= 1) by the nearest-rank rule: the
// middle of the bucket holding the sample of rank ceil(q·n), clamped to the
// exact minimum and maximum. It is 0 without samples.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.999999999)
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen < rank {
			continue
		}
		lo, hi := bucketBounds(i)
		v := time.Duration(lo + (hi-lo)/2)
		return min(max(v, h.min), h.max)
	}
	return h.max
}

// Latency is the summary of a Histogram that reports print.
type Latency struct {
	P50  time.Duration `json:"p50_ns"`
	P90  time.Duration `json:"p90_ns"`
	P99  time.Duration `json:"p99_ns"`
	Max  time.Duration `json:"max_ns"`
	Mean time.Duration `json:"mean_ns"`
}

// Summary returns p50, p90, p99, max and mean.
func (h *Histogram) Summary() Latency {
	return Latency{P50: h.Quantile(0.50), P90: h.Quantile(0.90), P99: h.Quantile(0.99), Max: h.max, Mean: h.Mean()}
}
