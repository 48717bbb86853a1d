package seed

// outline is the shape of one patient: every choice that decides how many
// resources of each type the patient has. It is drawn first from the
// patient's stream, so Counts can draw outlines alone, without rendering.
type outline struct {
	age       int // whole years on asOf
	female    bool
	city      int
	plan      int
	wellness  int     // yearly wellness visits, 3 or 4
	lipids    bool    // a lipid panel at the latest wellness visit
	acute     []uint8 // acuteConditions, one visit each
	chronic   []uint8 // chronicConditions, diagnosed at the first wellness visit
	allergies []uint8 // allergies
}

// Per-patient resource bounds promised by Options.Patients.
const (
	minPerPatient = 50
	maxPerPatient = 100
)

const (
	wellnessResources = 14 // Encounter, Claim, EOB, 7 vital signs, 2 labs, Immunization, Procedure
	acuteBase         = 6  // Encounter, Claim, EOB, Condition, 2 vital signs
	lipidPanel        = 4
	vitalsWellness    = 7
	vitalsAcute       = 2
	labsWellness      = 2
)

// Age bands: children 4-17, adults 18-64, seniors 65-89. Children start at
// four so that four yearly visits fall within their lives.
var (
	ageBands       = [][2]int{{4, 17}, {18, 64}, {65, 89}}
	ageBandWeights = []int{20, 55, 25}
	// plan weights by band, aligned with plans.
	planWeights = [][]int{
		{20, 15, 15, 15, 0, 0, 35},
		{28, 20, 18, 16, 0, 0, 18},
		{0, 0, 0, 0, 40, 60, 0},
	}
	chronicCountWeights = [][]int{{80, 20}, {40, 35, 20, 5}, {15, 30, 35, 20}}
	allergyCountWeights = []int{60, 30, 10}
)

func outlinePatient(r *rng) outline {
	var o outline
	band := r.pick(ageBandWeights)
	o.age = r.between(ageBands[band][0], ageBands[band][1])
	o.female = r.percent(51)
	o.city = r.intn(len(cities))
	o.plan = r.pick(planWeights[band])
	o.wellness = r.between(3, 4)
	o.lipids = o.age >= 20 && r.percent(70)
	o.chronic = pickDistinct(r, eligible(chronicConditions, o.age), r.pick(chronicCountWeights[band]))
	o.chronic = dropPrediabetesIfDiabetic(o.chronic)
	o.allergies = pickDistinct(r, allIndexes(len(allergies)), r.pick(allergyCountWeights))
	acuteOK := eligible(acuteConditions, o.age)
	for range r.between(2, 6) {
		o.acute = append(o.acute, acuteOK[r.intn(len(acuteOK))])
	}
	// Keep the patient within the promised bounds. The minimum draw (3
	// wellness visits, 2 acute) is 56; the maximum exceeds 100, so acute
	// visits are dropped from the end until it fits: with one acute visit
	// left the most a patient can have is 2 + 4*14 + 4 + 8 + 3*2 + 2 = 78.
	for o.total() > maxPerPatient && len(o.acute) > 1 {
		o.acute = o.acute[:len(o.acute)-1]
	}
	return o
}

func eligible(cs []condition, age int) []uint8 {
	var out []uint8
	for i, c := range cs {
		if age >= c.minAge && age <= c.maxAge {
			out = append(out, uint8(i))
		}
	}
	return out
}

func allIndexes(n int) []uint8 {
	out := make([]uint8, n)
	for i := range out {
		out[i] = uint8(i)
	}
	return out
}

// pickDistinct draws n distinct elements of from (partial Fisher-Yates).
func pickDistinct(r *rng, from []uint8, n int) []uint8 {
	n = min(n, len(from))
	for k := range n {
		j := k + r.intn(len(from)-k)
		from[k], from[j] = from[j], from[k]
	}
	return from[:n:n]
}

func dropPrediabetesIfDiabetic(chronic []uint8) []uint8 {
	diabetic := false
	for _, c := range chronic {
		diabetic = diabetic || c == chronicDiabetes
	}
	if !diabetic {
		return chronic
	}
	out := chronic[:0]
	for _, c := range chronic {
		if c != chronicPrediabetes {
			out = append(out, c)
		}
	}
	return out
}

func (o *outline) has(chronic int) bool {
	for _, c := range o.chronic {
		if int(c) == chronic {
			return true
		}
	}
	return false
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// addCounts adds the patient's resources per type to c.
func (o *outline) addCounts(c map[string]int) {
	visits := o.wellness + len(o.acute)
	c[TypePatient]++
	c[TypeCoverage]++
	c[TypeAllergyIntolerance] += len(o.allergies)
	c[TypeEncounter] += visits
	c[TypeClaim] += visits
	c[TypeExplanationOfBenefit] += visits
	c[TypeImmunization] += o.wellness
	c[TypeObservation] += o.wellness*(vitalsWellness+labsWellness) + len(o.acute)*vitalsAcute + lipidPanel*b2i(o.lipids)
	c[TypeProcedure] += o.wellness
	c[TypeCondition] += len(o.chronic) + len(o.acute)
	for _, a := range o.acute {
		c[TypeMedicationRequest] += b2i(acuteConditions[a].med != nil)
		c[TypeProcedure] += b2i(acuteConditions[a].proc != nil)
	}
	for _, ch := range o.chronic {
		c[TypeMedicationRequest] += b2i(chronicConditions[ch].med != nil)
	}
}

// total is the number of resources of the patient.
func (o *outline) total() int {
	n := 2 + o.wellness*wellnessResources + lipidPanel*b2i(o.lipids) + len(o.allergies)
	for _, a := range o.acute {
		c := acuteConditions[a]
		n += acuteBase + b2i(c.med != nil) + b2i(c.proc != nil)
	}
	for _, ch := range o.chronic {
		n += 1 + b2i(chronicConditions[ch].med != nil)
	}
	return n
}
