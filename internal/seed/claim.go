package seed

// claimAndEOB emits the visit's Claim (what the provider billed) and the
// payer's ExplanationOfBenefit for it: billed after the encounter ends,
// adjudicated one to four weeks later. Both reference the patient, the
// provider Organization, the payer (insurer) and the patient's Coverage; the
// EOB references its Claim.
func (g *generator) claimAndEOB(p *person, v *visit, enc *rid) error {
	r := p.r
	claimID, eobID := p.newID(), p.newID()
	er := !v.wellness && acuteConditions[v.acute].er
	pos := posOffice
	typ := claimProf
	switch {
	case er:
		pos, typ = posER, claimInst
	case providerOrgs[v.org].kind == urgentCare:
		pos = posUrgent
	}
	created := v.end + int64(r.between(1, 72))*3600
	adjudicated := created + int64(r.between(7, 30))*day
	var number [12]byte
	copy(number[:], "CLM")
	for i := 3; i < len(number); i++ {
		number[i] = byte('0' + r.intn(10))
	}
	c := claimHead{p: p, v: v, enc: enc, typ: typ, pos: pos, number: string(number[:])}

	w := g.begin(TypeClaim, &claimID)
	g.claimCommon(&c, created)
	w.kconcept("priority", priorityNormal)
	g.careTeamDiagnosisInsurance(&c, true)
	var total int64
	w.karr("item")
	for i, it := range g.items {
		g.itemCommon(&c, i, it)
		w.endObj()
		total += it.cents
	}
	w.endArr()
	w.kmoney("total", total)
	w.endObj()
	if err := g.send(TypeClaim, &claimID); err != nil {
		return err
	}

	pl := plans[p.o.plan]
	allowedPct := int64(r.between(55, 85))
	w = g.begin(TypeExplanationOfBenefit, &eobID)
	g.claimCommon(&c, adjudicated)
	w.kref("claim", TypeClaim, &claimID)
	w.kstr("outcome", "complete")
	g.careTeamDiagnosisInsurance(&c, false)
	var benefit int64
	copay := pl.copay
	w.karr("item")
	for i, it := range g.items {
		g.itemCommon(&c, i, it)
		allowed := it.cents * allowedPct / 100
		co := min(copay, allowed)
		copay -= co
		deduct := (allowed - co) * pl.deductiblePct / 100
		paid := allowed - co - deduct
		benefit += paid
		w.karr("adjudication")
		adjudication(w, adjSubmitted, it.cents)
		adjudication(w, adjEligible, allowed)
		adjudication(w, adjCopay, co)
		adjudication(w, adjDeductible, deduct)
		adjudication(w, adjBenefit, paid)
		w.endArr()
		w.endObj()
	}
	w.endArr()
	var submitted int64
	for _, it := range g.items {
		submitted += it.cents
	}
	w.karr("total")
	adjudication(w, adjSubmitted, submitted)
	adjudication(w, adjBenefit, benefit)
	w.endArr()
	w.kobj("payment")
	w.kconcept("type", payComplete)
	w.kdate("date", adjudicated, p.off)
	w.kmoney("amount", benefit)
	w.endObj()
	w.endObj()
	return g.send(TypeExplanationOfBenefit, &eobID)
}

// claimHead is what a visit's Claim and EOB share.
type claimHead struct {
	p      *person
	v      *visit
	enc    *rid
	typ    code
	pos    code
	number string
}

// claimCommon writes the elements that open both a Claim and an EOB, up to
// created.
func (g *generator) claimCommon(c *claimHead, created int64) {
	w := &g.w
	w.karr("identifier")
	w.obj()
	w.kstr("system", sysClaimID)
	w.kstr("value", c.number)
	w.endObj()
	w.endArr()
	w.kstr("status", "active")
	w.kconcept("type", c.typ)
	w.kstr("use", "claim")
	w.kref("patient", TypePatient, &c.p.id)
	w.kperiod("billablePeriod", c.v.start, c.v.end, c.p.off)
	w.kdateTime("created", created, c.p.off)
	w.kref("insurer", TypeOrganization, &g.payerIDs[plans[c.p.o.plan].payer])
	w.kref("provider", TypeOrganization, &g.orgIDs[c.v.org])
}

// careTeamDiagnosisInsurance writes careTeam, diagnosis and insurance,
// which follow priority in a Claim and outcome in an EOB (R4 element order).
// Claim.insurance has a sequence, ExplanationOfBenefit.insurance has not.
func (g *generator) careTeamDiagnosisInsurance(c *claimHead, claim bool) {
	w := &g.w
	w.karr("careTeam")
	w.obj()
	w.kint("sequence", 1)
	w.kref("provider", TypePractitioner, &g.pracs[c.v.prac].id)
	w.kconcept("role", careTeamPrimary)
	w.kconcept("qualification", g.pracs[c.v.prac].specialty)
	w.endObj()
	w.endArr()
	w.karr("diagnosis")
	for i, d := range g.dx {
		w.obj()
		w.kint("sequence", int64(i+1))
		w.kconcept("diagnosisCodeableConcept", d)
		if i == 0 {
			w.kconceptList("type", dxPrincipal)
		} else {
			w.kconceptList("type", dxSecondary)
		}
		w.endObj()
	}
	w.endArr()
	w.karr("insurance")
	w.obj()
	if claim {
		w.kint("sequence", 1)
	}
	w.kbool("focal", true)
	w.kref("coverage", TypeCoverage, &c.p.covID)
	w.endObj()
	w.endArr()
}

// itemCommon opens item i and writes what Claim and EOB items share, up to
// encounter; the caller adds an EOB's adjudication and closes it.
func (g *generator) itemCommon(c *claimHead, i int, it lineItem) {
	w := &g.w
	w.obj()
	w.kint("sequence", int64(i+1))
	w.karr("careTeamSequence")
	w.sep()
	w.b = append(w.b, '1')
	w.more = true
	w.endArr()
	w.karr("diagnosisSequence")
	w.sep()
	w.b = append(w.b, '1')
	w.more = true
	w.endArr()
	w.kconcept("productOrService", it.code)
	w.kdate("servicedDate", c.v.start, c.p.off)
	w.kconcept("locationCodeableConcept", c.pos)
	w.kmoney("net", it.cents)
	w.karr("encounter")
	w.ref(TypeEncounter, c.enc)
	w.endArr()
}

func adjudication(w *jw, category code, cents int64) {
	w.obj()
	w.kconcept("category", category)
	w.kmoney("amount", cents)
	w.endObj()
}
