package seed

import "sort"

// visit is one encounter of the patient.
type visit struct {
	start, end int64 // unix seconds
	wellness   bool
	first      bool // the first wellness visit: chronic conditions are diagnosed
	lipids     bool // a lipid panel is drawn
	acute      int  // index into acuteConditions when !wellness
	org        int  // provider organization
	prac       int  // practitioner
}

// scheduleVisits lays out the outline's visits in time: one wellness visit a
// year back from asOf, acute visits in between, sorted by start. All fall
// after birth (children are at least four, visits at most four years back).
func (p *person) scheduleVisits() []visit {
	r := p.r
	vs := make([]visit, 0, p.o.wellness+len(p.o.acute))
	for k := range p.o.wellness {
		d := asOf/day - int64(k*365+r.between(20, 300))
		vs = append(vs, visit{wellness: true, lipids: k == 0 && p.o.lipids})
		vs[len(vs)-1].start = p.localTime(d, r.between(8*60, 16*60))
		vs[len(vs)-1].end = vs[len(vs)-1].start + int64(r.between(30, 60))*60
	}
	for _, a := range p.o.acute {
		d := asOf/day - int64(r.between(1, p.o.wellness*365-1))
		v := visit{acute: int(a)}
		v.start = p.localTime(d, r.between(7*60, 21*60))
		if acuteConditions[a].er {
			v.end = v.start + int64(r.between(90, 300))*60
		} else {
			v.end = v.start + int64(r.between(15, 40))*60
		}
		vs = append(vs, v)
	}
	sort.SliceStable(vs, func(i, j int) bool { return vs[i].start < vs[j].start })
	vs[firstWellness(vs)].first = true
	for i := range vs {
		p.assignProvider(&vs[i])
	}
	return vs
}

// localTime returns the unix time of minute m of day d in the patient's
// time zone.
func (p *person) localTime(d int64, m int) int64 {
	return d*day + int64(m)*60 - int64(p.off)*60
}

func firstWellness(vs []visit) int {
	for i := range vs {
		if vs[i].wellness {
			return i
		}
	}
	return 0
}

// Provider organizations are laid out as in providerOrgs: clinics, then
// urgent care centers of every other city, then hospitals.
func urgentCareOrg(city int) int { return len(cities) + city/2 }
func hospitalOrg(city int) int   { return len(cities) + (len(cities)+1)/2 + city }

// assignProvider sends wellness visits to the primary care provider, ER
// conditions to the hospital and other acute visits to the primary care
// provider or the urgent care center of the patient's city. A practitioner
// of -1 stands for the primary care provider; otherwise the generator draws
// one of the organization's staff.
func (p *person) assignProvider(v *visit) {
	city := p.o.city
	switch {
	case v.wellness:
		v.org = city
		v.prac = -1 // the PCP, resolved by the generator
	case acuteConditions[v.acute].er:
		v.org = hospitalOrg(city)
	case p.r.percent(50):
		v.org = urgentCareOrg(city)
	default:
		v.org = city
		v.prac = -1
	}
}

// lineItem is a billed service of a visit.
type lineItem struct {
	code  code
	cents int64
}

// visit emits an Encounter and everything recorded during it, then its Claim
// and ExplanationOfBenefit.
func (g *generator) visit(p *person, v *visit) error {
	if v.prac < 0 {
		v.prac = p.pcp
	} else {
		staff := g.orgStaff[v.org]
		v.prac = staff[p.r.intn(len(staff))]
	}
	encID := p.newID()
	g.items = g.items[:0]
	g.dx = g.dx[:0]
	if err := g.encounter(p, v, &encID); err != nil {
		return err
	}
	var err error
	if v.wellness {
		err = g.wellnessContent(p, v, &encID)
	} else {
		err = g.acuteContent(p, v, &encID)
	}
	if err != nil {
		return err
	}
	return g.claimAndEOB(p, v, &encID)
}

func (g *generator) encounter(p *person, v *visit, id *rid) error {
	w := g.begin(TypeEncounter, id)
	w.kstr("status", "finished")
	var typ code
	switch {
	case v.wellness && p.ageAt(v.start) < 18:
		w.kraw("class", classAMBJSON)
		typ = encWellChild
	case v.wellness:
		w.kraw("class", classAMBJSON)
		typ = encCheckUp
	case acuteConditions[v.acute].er:
		w.kraw("class", classEMERJSON)
		typ = encEmergency
	default:
		w.kraw("class", classAMBJSON)
		typ = encSymptom
	}
	w.kconceptList("type", typ)
	w.kref("subject", TypePatient, &p.id)
	w.karr("participant")
	w.obj()
	w.kconceptList("type", partPrimary)
	w.kperiod("period", v.start, v.end, p.off)
	w.kref("individual", TypePractitioner, &g.pracs[v.prac].id)
	w.endObj()
	w.endArr()
	w.kperiod("period", v.start, v.end, p.off)
	if !v.wellness {
		w.kconceptList("reasonCode", acuteConditions[v.acute].code)
	}
	w.kref("serviceProvider", TypeOrganization, &g.orgIDs[v.org])
	w.endObj()
	g.items = append(g.items, lineItem{typ, visitPrice(p.r, v)})
	return g.send(TypeEncounter, id)
}

// classJSON renders Encounter.class, a Coding (not a CodeableConcept) in R4.
func classJSON(c code) string {
	return `{"system":"` + c.system + `","code":"` + c.code + `","display":"` + c.display + `"}`
}

var (
	classAMBJSON  = classJSON(classAMB)
	classEMERJSON = classJSON(classEMER)
)

func visitPrice(r *rng, v *visit) int64 {
	switch {
	case v.wellness:
		return int64(r.between(13500, 21000))
	case acuteConditions[v.acute].er:
		return int64(r.between(45000, 120000))
	default:
		return int64(r.between(9000, 15000))
	}
}

// wellnessContent emits a wellness visit's vital signs, labs, immunization
// and screening procedure; at the first one, the chronic conditions with
// their prescriptions.
func (g *generator) wellnessContent(p *person, v *visit, enc *rid) error {
	age := p.ageAt(v.start)
	if age < 18 {
		g.dx = append(g.dx, dxChildExam)
	} else {
		g.dx = append(g.dx, dxAdultExam)
	}
	if v.first {
		for _, ci := range p.o.chronic {
			if err := g.diagnose(p, v, enc, &chronicConditions[ci], true); err != nil {
				return err
			}
		}
	}
	if err := g.vitals(p, v, enc, age, false); err != nil {
		return err
	}
	if err := g.labs(p, v, enc, age); err != nil {
		return err
	}
	if err := g.immunization(p, v, enc, age); err != nil {
		return err
	}
	proc := procMedRecon
	if age >= 12 && p.r.percent(50) {
		proc = procDepScreen
	}
	return g.procedure(p, v, enc, proc, nil)
}

// acuteContent emits an acute visit's diagnosis, vital signs, and the usual
// procedure and prescription of the condition.
func (g *generator) acuteContent(p *person, v *visit, enc *rid) error {
	c := &acuteConditions[v.acute]
	return g.diagnose(p, v, enc, c, false)
}

// diagnose emits a Condition, its vital signs for acute visits, and its
// procedure and prescription when it has them.
func (g *generator) diagnose(p *person, v *visit, enc *rid, c *condition, chronic bool) error {
	condID := p.newID()
	if err := g.condition(p, v, enc, &condID, c, chronic); err != nil {
		return err
	}
	g.dx = append(g.dx, c.icd)
	if !chronic {
		if err := g.vitals(p, v, enc, p.ageAt(v.start), true); err != nil {
			return err
		}
	}
	if c.proc != nil {
		if err := g.procedure(p, v, enc, *c.proc, &condID); err != nil {
			return err
		}
	}
	if c.med != nil {
		return g.medicationRequest(p, v, enc, &condID, c.med, chronic)
	}
	return nil
}

func (g *generator) condition(p *person, v *visit, enc, id *rid, c *condition, chronic bool) error {
	w := g.begin(TypeCondition, id)
	abate := v.start + int64(p.r.between(7, 21))*day
	resolved := !chronic && abate < asOf
	if resolved {
		w.kconcept("clinicalStatus", clinicalResolve)
	} else {
		w.kconcept("clinicalStatus", clinicalActive)
	}
	w.kconcept("verificationStatus", verConfirmed)
	if chronic {
		w.kconceptList("category", catProblemList)
	} else {
		w.kconceptList("category", catEncounterDx)
	}
	w.kconcept("code", c.code, c.icd)
	w.kref("subject", TypePatient, &p.id)
	w.kref("encounter", TypeEncounter, enc)
	w.kdateTime("onsetDateTime", v.start, p.off)
	if resolved {
		w.kdateTime("abatementDateTime", abate, p.off)
	}
	w.kdateTime("recordedDate", v.start, p.off)
	w.kref("recorder", TypePractitioner, &g.pracs[v.prac].id)
	w.endObj()
	return g.send(TypeCondition, id)
}

func (g *generator) procedure(p *person, v *visit, enc *rid, c code, reason *rid) error {
	id := p.newID()
	w := g.begin(TypeProcedure, &id)
	w.kstr("status", "completed")
	w.kconcept("code", c)
	w.kref("subject", TypePatient, &p.id)
	w.kref("encounter", TypeEncounter, enc)
	start := v.start + (v.end-v.start)/3
	w.kperiod("performedPeriod", start, start+int64(p.r.between(5, 20))*60, p.off)
	w.karr("performer")
	w.obj()
	w.kref("actor", TypePractitioner, &g.pracs[v.prac].id)
	w.endObj()
	w.endArr()
	if reason != nil {
		w.karr("reasonReference")
		w.ref(TypeCondition, reason)
		w.endArr()
	}
	w.endObj()
	g.items = append(g.items, lineItem{c, int64(p.r.between(2500, 40000))})
	return g.send(TypeProcedure, &id)
}

func (g *generator) immunization(p *person, v *visit, enc *rid, age int) error {
	vax := vaxFlu
	if p.r.percent(50) {
		var due []int
		for i, x := range vaccines {
			if age >= x.minAge && age <= x.maxAge {
				due = append(due, i)
			}
		}
		if len(due) > 0 {
			vax = vaccines[due[p.r.intn(len(due))]]
		}
	}
	id := p.newID()
	w := g.begin(TypeImmunization, &id)
	w.kstr("status", "completed")
	w.kconcept("vaccineCode", vax.code)
	w.kref("patient", TypePatient, &p.id)
	w.kref("encounter", TypeEncounter, enc)
	w.kdateTime("occurrenceDateTime", v.start+(v.end-v.start)/2, p.off)
	w.kbool("primarySource", true)
	w.key("lotNumber")
	w.beginStr()
	w.b = append(w.b, byte('A'+p.r.intn(26)), byte('A'+p.r.intn(26)))
	w.b = appendDigits(w.b, p.r, 5)
	w.endStr()
	w.karr("performer")
	w.obj()
	w.kref("actor", TypePractitioner, &g.pracs[v.prac].id)
	w.endObj()
	w.endArr()
	w.endObj()
	g.items = append(g.items, lineItem{vax.code, int64(p.r.between(3000, 16000))})
	return g.send(TypeImmunization, &id)
}

func (g *generator) medicationRequest(p *person, v *visit, enc, reason *rid, m *medication, chronic bool) error {
	id := p.newID()
	w := g.begin(TypeMedicationRequest, &id)
	if chronic {
		w.kstr("status", "active")
	} else {
		w.kstr("status", "completed")
	}
	w.kstr("intent", "order")
	w.kconcept("medicationCodeableConcept", m.code)
	w.kref("subject", TypePatient, &p.id)
	w.kref("encounter", TypeEncounter, enc)
	w.kdateTime("authoredOn", v.end, p.off)
	w.kref("requester", TypePractitioner, &g.pracs[v.prac].id)
	w.karr("reasonReference")
	w.ref(TypeCondition, reason)
	w.endArr()
	w.karr("dosageInstruction")
	w.obj()
	w.kint("sequence", 1)
	w.kstr("text", m.sig)
	w.kobj("timing")
	w.kobj("repeat")
	w.kint("frequency", int64(m.perDay))
	w.kint("period", 1)
	w.kstr("periodUnit", "d")
	w.endObj()
	w.endObj()
	w.kbool("asNeededBoolean", m.asNeeded)
	w.endObj()
	w.endArr()
	w.endObj()
	return g.send(TypeMedicationRequest, &id)
}
