package seed

import "time"

// asOf is the day the data set describes: every date lies before it. It is
// fixed, not the clock, so that the data set is deterministic.
var asOf = time.Date(2025, time.June, 30, 0, 0, 0, 0, time.UTC).Unix()

const day = 24 * 3600

// person is the state of the patient being generated.
type person struct {
	o      outline
	r      *rng
	seed   uint64
	scope  uint64
	next   int // next id ordinal in scope
	id     rid
	covID  rid
	off    int   // UTC offset in minutes
	birth  int64 // unix seconds, midnight UTC of the birth date
	given  string
	family string
	pcp    int // practitioner index of the primary care provider
	// body measures in tenths: cm and kg/m2
	adultHeight int
	bmi         int
}

// newID allocates the patient's next resource id. The patient itself is
// ordinal 0, which PatientID and the Groups rely on.
func (p *person) newID() rid {
	p.next++
	return makeID(p.seed, p.scope, p.next-1)
}

// ageAt returns the patient's age in whole years at unix time t.
func (p *person) ageAt(t int64) int {
	by, bm, bd := time.Unix(p.birth, 0).UTC().Date()
	ty, tm, td := time.Unix(t, 0).UTC().Date()
	age := ty - by
	if tm < bm || (tm == bm && td < bd) {
		age--
	}
	return age
}

// patient generates and emits patient i's resources and returns the index
// of the plan that covers the patient.
func (g *generator) patient(i int) (int, error) {
	r := patientRNG(g.seed, i)
	p := &person{o: outlinePatient(r), r: r, seed: g.seed, scope: uint64(i) + 1}
	p.id = p.newID()
	p.covID = p.newID()
	c := cities[p.o.city]
	p.off = c.offMin
	// Birth: age whole years before asOf, minus up to a year.
	p.birth = (asOf/day - int64(p.o.age)*365 - int64(p.o.age/4) - int64(r.intn(365))) * day
	if p.o.female {
		p.given = givenFemale[r.intn(len(givenFemale))]
	} else {
		p.given = givenMale[r.intn(len(givenMale))]
	}
	p.family = familyNames[r.intn(len(familyNames))]
	p.pcp = g.choosePCP(p)
	p.bodyMeasures()

	visits := p.scheduleVisits()
	coverageStart := max(p.birth, (visits[0].start/day-int64(r.between(30, 400)))*day)

	if err := g.patientResource(p); err != nil {
		return 0, err
	}
	if err := g.coverage(p, coverageStart); err != nil {
		return 0, err
	}
	if err := g.allergies(p, &visits[firstWellness(visits)]); err != nil {
		return 0, err
	}
	for vi := range visits {
		if err := g.visit(p, &visits[vi]); err != nil {
			return 0, err
		}
	}
	return p.o.plan, nil
}

// choosePCP picks the primary care practitioner at the clinic of the
// patient's city: the pediatrician for a child, another clinician otherwise.
func (g *generator) choosePCP(p *person) int {
	staff := g.orgStaff[p.o.city] // clinics come first, one per city
	if p.o.age < 18 {
		return staff[2]
	}
	return staff[[]int{0, 1, 3}[p.r.intn(3)]]
}

// bodyMeasures draws the adult height and the body mass index (tenths).
func (p *person) bodyMeasures() {
	r := p.r
	if p.o.female {
		p.adultHeight = r.bell(1520, 1760)
	} else {
		p.adultHeight = r.bell(1640, 1900)
	}
	switch {
	case p.o.has(chronicObesity):
		p.bmi = r.bell(305, 420)
	case p.o.age < 18:
		p.bmi = r.bell(150, 230)
	default:
		p.bmi = r.bell(195, 295)
	}
}

func (g *generator) patientResource(p *person) error {
	w := g.begin(TypePatient, &p.id)
	r := p.r
	c := cities[p.o.city]
	g.usCoreExtensions(p)
	w.karr("identifier")
	w.obj()
	w.kconcept("type", idTypeMR)
	w.kstr("system", sysMRN)
	w.key("value")
	w.beginStr()
	w.b = appendDigits(w.b, r, 8)
	w.endStr()
	w.endObj()
	w.endArr()
	w.kbool("active", true)
	g.patientName(p)
	w.karr("telecom")
	w.obj()
	w.kstr("system", "phone")
	w.key("value")
	w.beginStr()
	w.b = appendPhone(w.b, c.area, r.intn(100))
	w.endStr()
	w.kstr("use", "home")
	w.endObj()
	w.endArr()
	if p.o.female {
		w.kstr("gender", "female")
	} else {
		w.kstr("gender", "male")
	}
	w.kdate("birthDate", p.birth, 0)
	g.homeAddress(p, c)
	if p.o.age >= 18 {
		w.kconcept("maritalStatus", maritalStatuses[r.pick(maritalWeights)])
	}
	w.karr("communication")
	w.obj()
	if r.percent(12) {
		w.kconcept("language", langSpanish)
	} else {
		w.kconcept("language", langEnglish)
	}
	w.kbool("preferred", true)
	w.endObj()
	w.endArr()
	w.karr("generalPractitioner")
	w.ref(TypePractitioner, &g.pracs[p.pcp].id)
	w.endArr()
	w.kref("managingOrganization", TypeOrganization, &g.orgIDs[p.o.city])
	w.endObj()
	return g.send(TypePatient, &p.id)
}

// patientName writes Patient.name: the official name, with a middle
// initial for most.
func (g *generator) patientName(p *person) {
	w, r := &g.w, p.r
	w.karr("name")
	w.obj()
	w.kstr("use", "official")
	w.kstr("family", p.family)
	w.karr("given")
	w.str(p.given)
	if r.percent(60) {
		w.beginStr()
		w.b = append(w.b, byte('A'+r.intn(26)), '.')
		w.endStr()
	}
	w.endArr()
	w.endObj()
	w.endArr()
}

// homeAddress writes Patient.address: a street address in the patient's
// city.
func (g *generator) homeAddress(p *person, c city) {
	w, r := &g.w, p.r
	w.karr("address")
	w.obj()
	w.kstr("use", "home")
	w.karr("line")
	w.beginStr()
	w.b = appendInt(w.b, int64(r.between(1, 9999)))
	w.b = append(w.b, ' ')
	w.b = append(w.b, streetNames[r.intn(len(streetNames))]...)
	w.b = append(w.b, ' ')
	w.b = append(w.b, streetKinds[r.intn(len(streetKinds))]...)
	w.endStr()
	w.endArr()
	w.kstr("city", c.name)
	w.kstr("state", c.state)
	w.kstr("postalCode", c.zip)
	w.kstr("country", "US")
	w.endObj()
	w.endArr()
}

// usCoreExtensions writes the US Core race, ethnicity and birth sex
// extensions (US Core 3.1+ Patient profile).
func (g *generator) usCoreExtensions(p *person) {
	w := &g.w
	r := p.r
	race := races[r.pick(raceWeights)]
	eth := nonHispanic
	if r.percent(18) {
		eth = hispanic
	}
	w.karr("extension")
	for _, e := range [2]struct {
		url string
		c   code
	}{{usCoreSD + "us-core-race", race}, {usCoreSD + "us-core-ethnicity", eth}} {
		w.obj()
		w.kstr("url", e.url)
		w.karr("extension")
		w.obj()
		w.kstr("url", "ombCategory")
		w.key("valueCoding")
		w.coding(e.c)
		w.endObj()
		w.obj()
		w.kstr("url", "text")
		w.kstr("valueString", e.c.display)
		w.endObj()
		w.endArr()
		w.endObj()
	}
	w.obj()
	w.kstr("url", usCoreSD+"us-core-birthsex")
	if p.o.female {
		w.kstr("valueCode", "F")
	} else {
		w.kstr("valueCode", "M")
	}
	w.endObj()
	w.endArr()
}

// appendDigits appends n random decimal digits, the first not zero.
func appendDigits(b []byte, r *rng, n int) []byte {
	b = append(b, byte('1'+r.intn(9)))
	for range n - 1 {
		b = append(b, byte('0'+r.intn(10)))
	}
	return b
}

// coverage emits the patient's Coverage by the outline's plan: the patient
// is the beneficiary (and, for adults, the subscriber), the plan's payer
// Organization the payor.
func (g *generator) coverage(p *person, start int64) error {
	pl := plans[p.o.plan]
	w := g.begin(TypeCoverage, &p.covID)
	w.karr("identifier")
	w.obj()
	w.kconcept("type", idTypeMB)
	w.kstr("system", sysMemberID)
	w.key("value")
	w.beginStr()
	w.b = append(w.b, upperPrefix(payers[pl.payer].key)...)
	w.b = appendDigits(w.b, p.r, 9)
	w.endStr()
	w.endObj()
	w.endArr()
	w.kstr("status", "active")
	w.kconcept("type", pl.kind)
	adult := p.o.age >= 18
	if adult {
		w.kref("subscriber", TypePatient, &p.id)
	}
	w.kref("beneficiary", TypePatient, &p.id)
	if adult {
		w.kconcept("relationship", relSelf)
	} else {
		w.kconcept("relationship", relChild)
	}
	w.kobj("period")
	w.kdate("start", start, p.off)
	w.endObj()
	w.karr("payor")
	w.ref(TypeOrganization, &g.payerIDs[pl.payer])
	w.endArr()
	w.karr("class")
	w.obj()
	w.kconcept("type", classGroup)
	w.key("value")
	w.beginStr()
	w.b = append(w.b, "GRP-"...)
	w.b = appendInt(w.b, int64(1000+p.o.plan*100+p.o.city))
	w.endStr()
	w.kstr("name", cities[p.o.city].name+" members")
	w.endObj()
	w.obj()
	w.kconcept("type", classPlan)
	w.kstr("value", pl.key)
	w.kstr("name", pl.name)
	w.endObj()
	w.endArr()
	w.endObj()
	return g.send(TypeCoverage, &p.covID)
}

func upperPrefix(key string) string {
	var b [3]byte
	for i := range b {
		c := key[i]
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		b[i] = c
	}
	return string(b[:])
}

// allergies emits the patient's AllergyIntolerances, recorded at the first
// wellness visit by the primary care provider.
func (g *generator) allergies(p *person, v *visit) error {
	for _, ai := range p.o.allergies {
		a := allergies[ai]
		id := p.newID()
		w := g.begin(TypeAllergyIntolerance, &id)
		w.kconcept("clinicalStatus", allergyActive)
		w.kconcept("verificationStatus", allergyConfirm)
		w.kstr("type", "allergy")
		w.karr("category")
		w.str(a.category)
		w.endArr()
		if p.r.percent(20) {
			w.kstr("criticality", "high")
		} else {
			w.kstr("criticality", "low")
		}
		w.kconcept("code", a.code)
		w.kref("patient", TypePatient, &p.id)
		w.kdateTime("recordedDate", v.start, p.off)
		w.kref("recorder", TypePractitioner, &g.pracs[p.pcp].id)
		w.karr("reaction")
		w.obj()
		w.kconceptList("manifestation", a.reaction)
		w.kstr("severity", []string{"mild", "moderate", "severe"}[p.r.pick([]int{60, 30, 10})])
		w.endObj()
		w.endArr()
		w.endObj()
		if err := g.send(TypeAllergyIntolerance, &id); err != nil {
			return err
		}
	}
	return nil
}
