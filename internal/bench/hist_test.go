package bench

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestBucketsTileTheLine: buckets are contiguous, in order, and every value
// falls in the bucket whose bounds hold it, at most 1/128 wide.
func TestBucketsTileTheLine(t *testing.T) {
	var prevHi uint64
	for i := range numBuckets {
		lo, hi := bucketBounds(i)
		if i > 0 && lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, previous ended at %d", i, lo, prevHi)
		}
		if hi < lo || float64(hi-lo+1) > float64(lo)/subBuckets+1 {
			t.Fatalf("bucket %d = [%d, %d] is too wide", i, lo, hi)
		}
		for _, v := range []uint64{lo, hi, lo + (hi-lo)/2} {
			if got := bucketOf(v); got != i {
				t.Fatalf("bucketOf(%d) = %d, want %d", v, got, i)
			}
		}
		prevHi = hi
	}
	if prevHi != math.MaxUint64>>1 {
		t.Fatalf("the last bucket ends at %d, want MaxInt64", prevHi)
	}
}

// TestQuantilesWithinOnePercent compares the histogram's quantiles with
// the exact order statistics of the same samples.
func TestQuantilesWithinOnePercent(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	dists := map[string]func() time.Duration{
		"lognormal around 1ms": func() time.Duration { return time.Duration(math.Exp(rng.NormFloat64()*0.8) * 1e6) },
		"uniform 0-50µs":       func() time.Duration { return time.Duration(rng.Int64N(50_000)) },
		"bimodal 300µs and 40ms": func() time.Duration {
			if rng.IntN(100) < 97 {
				return time.Duration(300_000 + rng.Int64N(30_000))
			}
			return time.Duration(40e6 + rng.Int64N(10e6))
		},
		"exact small values": func() time.Duration { return time.Duration(rng.Int64N(100)) },
	}
	for name, draw := range dists {
		t.Run(name, func(t *testing.T) {
			var h Histogram
			samples := make([]time.Duration, 200_000)
			for i := range samples {
				samples[i] = draw()
				h.Record(samples[i])
			}
			slices.Sort(samples)
			for _, q := range []float64{0.01, 0.5, 0.9, 0.99, 0.999, 1} {
				rank := int(math.Ceil(q * float64(len(samples))))
				want := samples[rank-1]
				got := h.Quantile(q)
				if diff := math.Abs(float64(got - want)); diff > 0.01*float64(want)+1 {
					t.Errorf("q%.3f = %v, exact %v (off by %.2f%%)", q, got, want, 100*diff/float64(want))
				}
			}
			if h.Max() != samples[len(samples)-1] || h.Min() != samples[0] {
				t.Errorf("min/max %v/%v, want %v/%v", h.Min(), h.Max(), samples[0], samples[len(samples)-1])
			}
			if h.Count() != uint64(len(samples)) {
				t.Errorf("count %d", h.Count())
			}
		})
	}
}

// TestMergeEqualsOneHistogram: workers' histograms merged give what one
// histogram of every sample gives.
func TestMergeEqualsOneHistogram(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var all, a, b Histogram
	for i := range 10_000 {
		d := time.Duration(rng.Int64N(int64(time.Second)))
		all.Record(d)
		if i%3 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	var m Histogram
	m.Merge(&a)
	m.Merge(&b)
	m.Merge(&Histogram{})
	m.Merge(nil)
	if m.Summary() != all.Summary() || m.Count() != all.Count() || m.Min() != all.Min() {
		t.Fatalf("merged %+v, want %+v", m.Summary(), all.Summary())
	}
}

// TestEmptyAndNegative: an empty histogram reports zeros; a negative
// duration counts as zero.
func TestEmptyAndNegative(t *testing.T) {
	var h Histogram
	if h.Summary() != (Latency{}) || h.Quantile(0.5) != 0 {
		t.Fatalf("empty: %+v", h.Summary())
	}
	h.Record(-5)
	if h.Count() != 1 || h.Max() != 0 || h.Quantile(1) != 0 {
		t.Fatalf("negative: count %d max %v", h.Count(), h.Max())
	}
}

func BenchmarkHistogramRecord(b *testing.B) {
	var h Histogram
	for i := range b.N {
		h.Record(time.Duration(i&0xfffff) * 1000)
	}
}
