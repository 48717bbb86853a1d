package seed

// Vital signs and labs. Values are drawn as integers in tenths (or whole
// units) so that the output does not depend on floating point.

// vitals emits the vital signs of a visit: at a wellness visit height,
// weight, BMI, blood pressure, heart rate, respiratory rate and temperature;
// at an acute visit temperature and heart rate.
func (g *generator) vitals(p *person, v *visit, enc *rid, age int, acute bool) error {
	r := p.r
	at := v.start + 5*60
	child := age < 18
	if acute {
		temp := r.bell(364, 374)
		if c := acuteConditions[v.acute]; !c.er {
			temp = r.bell(370, 393) // infections bring fever
		}
		if err := g.obs(p, enc, catVitalSigns, loincTemp, int64(temp), 1, "Cel", at, at); err != nil {
			return err
		}
		return g.obs(p, enc, catVitalSigns, loincHeartRate, int64(r.bell(70, 110)), 0, "/min", at, at)
	}
	h := p.adultHeight
	if child {
		h = min(h, 760+60*age+r.between(-40, 40))
	}
	bmi := p.bmi + r.between(-8, 8)
	weight := int64(bmi) * int64(h) * int64(h) / 1_000_000
	bmiShown := weight * 1_000_000 / (int64(h) * int64(h))
	sys, dia := r.bell(105, 130), r.bell(65, 84)
	switch {
	case child:
		sys, dia = r.bell(92, 115), r.bell(55, 75)
	case p.o.has(chronicHypertension):
		sys, dia = r.bell(134, 165), r.bell(84, 100)
	}
	hr, rr := r.bell(58, 92), r.bell(12, 18)
	if child {
		hr, rr = r.bell(70, 110), r.bell(16, 24)
	}
	temp := r.bell(361, 373)
	vs := [...]struct {
		c     code
		value int64
		dec   int
		unit  string
	}{
		{loincHeight, int64(h), 1, "cm"},
		{loincWeight, weight, 1, "kg"},
		{loincBMI, bmiShown, 1, "kg/m2"},
		{loincHeartRate, int64(hr), 0, "/min"},
		{loincRespRate, int64(rr), 0, "/min"},
		{loincTemp, int64(temp), 1, "Cel"},
	}
	for i, x := range vs {
		if i == 3 { // blood pressure goes between the body measures and the rates
			if err := g.bloodPressure(p, enc, sys, dia, at); err != nil {
				return err
			}
		}
		if err := g.obs(p, enc, catVitalSigns, x.c, x.value, x.dec, x.unit, at, at); err != nil {
			return err
		}
	}
	return nil
}

// labs emits a wellness visit's labs: HbA1c and glucose for adults (a lipid
// panel too when due), hemoglobin and hematocrit for children.
func (g *generator) labs(p *person, v *visit, enc *rid, age int) error {
	r := p.r
	at := v.start + 10*60
	issued := at + int64(r.between(2, 26))*3600
	lab := func(c code, val int, dec int, unit string) error {
		return g.obs(p, enc, catLaboratory, c, int64(val), dec, unit, at, issued)
	}
	if age < 18 {
		if err := lab(loincHgb, r.bell(115, 145), 1, "g/dL"); err != nil {
			return err
		}
		return lab(loincHct, r.bell(340, 440), 1, "%")
	}
	a1c, glu := r.bell(45, 56), r.bell(72, 99)
	switch {
	case p.o.has(chronicDiabetes):
		a1c, glu = r.bell(65, 95), r.bell(130, 220)
	case p.o.has(chronicPrediabetes):
		a1c, glu = r.bell(57, 64), r.bell(100, 125)
	}
	if err := lab(loincHbA1c, a1c, 1, "%"); err != nil {
		return err
	}
	if err := lab(loincGlucose, glu, 0, "mg/dL"); err != nil {
		return err
	}
	if !v.lipids {
		return nil
	}
	chol, ldl := r.bell(150, 240), r.bell(70, 160)
	if p.o.has(chronicHyperlipidemia) {
		chol, ldl = r.bell(220, 290), r.bell(150, 200)
	}
	if err := lab(loincChol, chol, 0, "mg/dL"); err != nil {
		return err
	}
	if err := lab(loincHDL, r.bell(35, 75), 0, "mg/dL"); err != nil {
		return err
	}
	if err := lab(loincLDL, ldl, 0, "mg/dL"); err != nil {
		return err
	}
	return lab(loincTrig, r.bell(60, 220), 0, "mg/dL")
}

// obs emits one Observation with a UCUM valueQuantity of value/10^dec,
// shaped like the HbA1c Observation of the seeds.
func (g *generator) obs(p *person, enc *rid, cat, c code, value int64, dec int, unit string, effective, issued int64) error {
	id := p.newID()
	w := g.begin(TypeObservation, &id)
	w.kstr("status", "final")
	w.kconceptList("category", cat)
	w.kconcept("code", c)
	w.kref("subject", TypePatient, &p.id)
	w.kref("encounter", TypeEncounter, enc)
	w.kdateTime("effectiveDateTime", effective, p.off)
	w.kdateTime("issued", issued, p.off)
	w.kquantity("valueQuantity", value, dec, unit)
	w.endObj()
	return g.send(TypeObservation, &id)
}

// bloodPressure emits the blood pressure panel with its systolic and
// diastolic components (R4 vital signs profile: the panel has no value).
func (g *generator) bloodPressure(p *person, enc *rid, sys, dia int, at int64) error {
	id := p.newID()
	w := g.begin(TypeObservation, &id)
	w.kstr("status", "final")
	w.kconceptList("category", catVitalSigns)
	w.kconcept("code", loincBPPanel)
	w.kref("subject", TypePatient, &p.id)
	w.kref("encounter", TypeEncounter, enc)
	w.kdateTime("effectiveDateTime", at, p.off)
	w.kdateTime("issued", at, p.off)
	w.karr("component")
	w.obj()
	w.kconcept("code", loincSystolic)
	w.kquantity("valueQuantity", int64(sys), 0, "mm[Hg]")
	w.endObj()
	w.obj()
	w.kconcept("code", loincDiastolic)
	w.kquantity("valueQuantity", int64(dia), 0, "mm[Hg]")
	w.endObj()
	w.endArr()
	w.endObj()
	return g.send(TypeObservation, &id)
}
