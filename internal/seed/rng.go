package seed

import (
	"math/bits"
	"math/rand/v2"
)

// rng draws the data set's random choices. It wraps math/rand/v2's PCG,
// whose output is fixed by its specification, and derives bounded integers
// itself (multiply-shift) instead of calling rand.Rand, so the data set stays
// byte-identical across Go releases and CPUs. Only integer arithmetic is used
// downstream for the same reason.
type rng struct{ src rand.PCG }

// mix64 is the splitmix64 finalizer: a bijection that spreads every input
// bit over the output.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// patientRNG seeds patient i's stream from the data set seed and i alone, so
// that patient i's resources never depend on the order (or the parallelism)
// in which patients are generated.
func patientRNG(seed uint64, i int) *rng {
	r := &rng{}
	r.src.Seed(mix64(seed^0x5eed0f9a7e1e7b5d), mix64(uint64(i)+mix64(seed)))
	return r
}

// sharedRNG seeds the stream of the shared resources (payers, providers,
// practitioners), distinct from every patient stream.
func sharedRNG(seed uint64) *rng {
	r := &rng{}
	r.src.Seed(mix64(seed^0x0a9a11e5ba5eda7a), mix64(^seed))
	return r
}

func (r *rng) u64() uint64 { return r.src.Uint64() }

// intn returns a number in [0, n). The multiply-shift bias is below 2^-50 for
// the small n used here.
func (r *rng) intn(n int) int {
	hi, _ := bits.Mul64(r.u64(), uint64(n))
	return int(hi)
}

// between returns a number in [lo, hi].
func (r *rng) between(lo, hi int) int { return lo + r.intn(hi-lo+1) }

// percent reports true with probability p/100.
func (r *rng) percent(p int) bool { return r.intn(100) < p }

// bell returns a number in [lo, hi] that clusters around the middle: the
// mean of three uniform draws.
func (r *rng) bell(lo, hi int) int {
	n := hi - lo + 1
	return lo + (r.intn(n)+r.intn(n)+r.intn(n))/3
}

// pick returns an index into a weight table.
func (r *rng) pick(weights []int) int {
	total := 0
	for _, w := range weights {
		total += w
	}
	x := r.intn(total)
	for i, w := range weights {
		if x < w {
			return i
		}
		x -= w
	}
	return len(weights) - 1
}

// rid is a resource id: a UUID in its 36-character text form, which is a
// valid FHIR id (R4 datatypes.html#id).
type rid [36]byte

// String returns the id as a string.
func (id *rid) String() string { return string(id[:]) }

const (
	mask61 = 1<<61 - 1
	// scopeShared is the id scope of payers, providers, practitioners and
	// groups; patient i uses scope i+1.
	scopeShared = 0
	// ordinalBits bounds the resources of one scope: 2^21, far above the
	// at most 100 of a patient.
	ordinalBits = 21
)

// MaxPatients must keep scope<<ordinalBits within 61 bits; this constant
// fails to compile (uint64 overflow) if it does not.
const _ = uint64(1<<(61-ordinalBits)) - (MaxPatients + 1) - 1

// makeID derives the id of the ordinal-th resource of scope in the data set
// of seed. The 122 random bits of a version 4 UUID are filled with a 4-round
// Feistel permutation of (seed, scope, ordinal): a permutation is a
// bijection, so two different resources can never get the same id, within
// one data set or across data sets whose seeds differ in their low 61 bits,
// while the ids still look random.
func makeID(seed uint64, scope uint64, ordinal int) rid {
	l := seed & mask61
	r := (scope<<ordinalBits | uint64(ordinal)) & mask61
	for round := uint64(1); round <= 4; round++ {
		l, r = r, l^(mix64(r+round*0x9e3779b97f4a7c15)&mask61)
	}
	// 60 bits above the version nibble, 62 below the variant bits.
	hiFree := l >> 1
	loFree := (l&1)<<61 | r
	hi := (hiFree>>12)<<16 | 0x4000 | hiFree&0xfff
	lo := 0b10<<62 | loFree
	var id rid
	hexInto(id[0:8], hi>>32, 8)
	id[8] = '-'
	hexInto(id[9:13], hi>>16, 4)
	id[13] = '-'
	hexInto(id[14:18], hi, 4)
	id[18] = '-'
	hexInto(id[19:23], lo>>48, 4)
	id[23] = '-'
	hexInto(id[24:36], lo, 12)
	return id
}

// hexInto writes the low n hex digits of v into dst.
func hexInto(dst []byte, v uint64, n int) {
	for i := n - 1; i >= 0; i-- {
		dst[i] = hexDigits[v&0xf]
		v >>= 4
	}
}
