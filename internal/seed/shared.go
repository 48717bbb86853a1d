package seed

// Id ordinals of the shared scope.
const (
	ordPayer        = 0
	ordProvider     = 100
	ordPractitioner = 1000
	ordGroup        = 100000
)

// practitioner is a member of a provider organization's staff.
type practitioner struct {
	id        rid
	given     string
	family    string
	female    bool
	npi       string
	specialty code
	org       int
}

// generator holds what every patient shares (the ids and names of the
// shared resources) and the reused JSON buffer.
type generator struct {
	seed     uint64
	emit     EmitFunc
	w        jw
	payerIDs []rid
	orgIDs   []rid
	orgNPIs  []string
	pracs    []practitioner
	orgStaff [][]int // practitioner indexes per provider organization

	// per-visit scratch, reused
	items []lineItem
	dx    []code
}

func practitionerCount() int {
	n := 0
	for _, o := range providerOrgs {
		n += len(o.staff)
	}
	return n
}

// newGenerator draws the shared resources of seed. Their stream is separate
// from every patient's, so patients do not depend on it.
func newGenerator(seed uint64, emit EmitFunc) *generator {
	g := &generator{seed: seed, emit: emit}
	g.w.b = make([]byte, 0, 16<<10)
	r := sharedRNG(seed)
	for i := range payers {
		g.payerIDs = append(g.payerIDs, makeID(seed, scopeShared, ordPayer+i))
	}
	for i, o := range providerOrgs {
		g.orgIDs = append(g.orgIDs, makeID(seed, scopeShared, ordProvider+i))
		g.orgNPIs = append(g.orgNPIs, npi(r))
		var staff []int
		for _, sp := range o.staff {
			p := practitioner{
				id:        makeID(seed, scopeShared, ordPractitioner+len(g.pracs)),
				female:    r.percent(50),
				family:    familyNames[r.intn(len(familyNames))],
				npi:       npi(r),
				specialty: sp,
				org:       i,
			}
			if p.female {
				p.given = givenFemale[r.intn(len(givenFemale))]
			} else {
				p.given = givenMale[r.intn(len(givenMale))]
			}
			staff = append(staff, len(g.pracs))
			g.pracs = append(g.pracs, p)
		}
		g.orgStaff = append(g.orgStaff, staff)
	}
	return g
}

func groupID(seed uint64, plan int) rid { return makeID(seed, scopeShared, ordGroup+plan) }

// npi draws a National Provider Identifier: ten digits starting with 1, the
// last a check digit.
func npi(r *rng) string {
	var d [10]byte
	d[0] = '1'
	for i := 1; i < 9; i++ {
		d[i] = byte('0' + r.intn(10))
	}
	d[9] = npiCheckDigit(d[:9])
	return string(d[:])
}

// npiCheckDigit computes the NPI check digit as CMS defines it: the Luhn
// check digit of the nine digits prefixed with 80840, whose contribution is
// the constant 24.
func npiCheckDigit(nine []byte) byte {
	sum := 24
	for i := 8; i >= 0; i-- {
		v := int(nine[i] - '0')
		if (8-i)%2 == 0 { // double every other digit from the rightmost
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
	}
	return byte('0' + (10-sum%10)%10)
}

// send emits the resource in the buffer.
func (g *generator) send(typ string, id *rid) error {
	return g.emit(typ, id.String(), g.w.b)
}

// begin starts a resource: {"resourceType":typ,"id":id
func (g *generator) begin(typ string, id *rid) *jw {
	w := &g.w
	w.reset()
	w.obj()
	w.kstr("resourceType", typ)
	w.key("id")
	w.beginStr()
	w.b = append(w.b, id[:]...)
	w.endStr()
	return w
}

// shared emits the payer and provider Organizations and the Practitioners.
func (g *generator) shared() error {
	for i := range payers {
		if err := g.payerOrg(i); err != nil {
			return err
		}
	}
	for i := range providerOrgs {
		if err := g.providerOrg(i); err != nil {
			return err
		}
	}
	for i := range g.pracs {
		if err := g.practitioner(i); err != nil {
			return err
		}
	}
	return nil
}

func (g *generator) payerOrg(i int) error {
	p := payers[i]
	c := cities[i%len(cities)]
	w := g.begin(TypeOrganization, &g.payerIDs[i])
	w.karr("identifier")
	w.obj()
	w.kstr("system", sysPayerID)
	w.kstr("value", p.key)
	w.endObj()
	w.endArr()
	w.kbool("active", true)
	w.kconceptList("type", orgTypePayer)
	w.kstr("name", p.name)
	w.karr("telecom")
	w.obj()
	w.kstr("system", "phone")
	w.kstr("value", p.phone)
	w.kstr("use", "work")
	w.endObj()
	w.endArr()
	w.karr("address")
	g.address(100+i*37, streetNames[i%len(streetNames)]+" Plaza", c)
	w.endArr()
	w.endObj()
	return g.send(TypeOrganization, &g.payerIDs[i])
}

func (g *generator) providerOrg(i int) error {
	o := providerOrgs[i]
	c := cities[o.city]
	w := g.begin(TypeOrganization, &g.orgIDs[i])
	w.karr("identifier")
	w.obj()
	w.kconcept("type", idTypeNPI)
	w.kstr("system", npiSys)
	w.kstr("value", g.orgNPIs[i])
	w.endObj()
	w.endArr()
	w.kbool("active", true)
	w.kconceptList("type", orgTypeProvider)
	w.kstr("name", o.name)
	w.karr("telecom")
	w.obj()
	w.kstr("system", "phone")
	w.key("value")
	w.beginStr()
	w.b = appendPhone(w.b, c.area, 10+i%90)
	w.endStr()
	w.kstr("use", "work")
	w.endObj()
	w.endArr()
	w.karr("address")
	g.address(200+i*13, streetNames[(i*7)%len(streetNames)]+" "+streetKinds[i%len(streetKinds)], c)
	w.endArr()
	w.endObj()
	return g.send(TypeOrganization, &g.orgIDs[i])
}

func (g *generator) practitioner(i int) error {
	p := &g.pracs[i]
	o := providerOrgs[p.org]
	w := g.begin(TypePractitioner, &p.id)
	w.karr("identifier")
	w.obj()
	w.kconcept("type", idTypeNPI)
	w.kstr("system", npiSys)
	w.kstr("value", p.npi)
	w.endObj()
	w.endArr()
	w.kbool("active", true)
	w.karr("name")
	w.obj()
	w.kstr("use", "official")
	w.kstr("family", p.family)
	w.karr("given")
	w.str(p.given)
	w.endArr()
	if p.specialty == taxNP {
		w.karr("suffix")
		w.str("NP")
		w.endArr()
	} else {
		w.karr("prefix")
		w.str("Dr.")
		w.endArr()
	}
	w.endObj()
	w.endArr()
	w.karr("telecom")
	w.obj()
	w.kstr("system", "email")
	w.kstr("value", p.given+"."+p.family+"@example.org")
	w.kstr("use", "work")
	w.endObj()
	w.endArr()
	w.karr("address")
	g.address(200+p.org*13, streetNames[(p.org*7)%len(streetNames)]+" "+streetKinds[p.org%len(streetKinds)], cities[o.city])
	w.endArr()
	if p.female {
		w.kstr("gender", "female")
	} else {
		w.kstr("gender", "male")
	}
	w.karr("qualification")
	w.obj()
	w.kconcept("code", p.specialty)
	w.endObj()
	w.endArr()
	w.endObj()
	return g.send(TypePractitioner, &p.id)
}

// address writes one Address as an array element.
func (g *generator) address(number int, street string, c city) {
	w := &g.w
	w.obj()
	w.kstr("use", "work")
	w.karr("line")
	w.beginStr()
	w.b = appendInt(w.b, int64(number))
	w.b = append(w.b, ' ')
	w.b = append(w.b, street...)
	w.endStr()
	w.endArr()
	w.kstr("city", c.name)
	w.kstr("state", c.state)
	w.kstr("postalCode", c.zip)
	w.kstr("country", "US")
	w.endObj()
}

// appendPhone writes a number of the 555-0100 to 555-0199 range, which is
// reserved for fiction in the North American Numbering Plan.
func appendPhone(b []byte, area string, n int) []byte {
	b = append(b, area...)
	b = append(b, "-555-01"...)
	return append2(b, n%100)
}

// groups emits one Group per payer plan, named after the plan, with every
// patient covered by the plan as a member (R4 Group: type person, actual).
func (g *generator) groups(members [][]uint32) error {
	for pi, p := range plans {
		id := groupID(g.seed, pi)
		w := g.begin(TypeGroup, &id)
		w.karr("identifier")
		w.obj()
		w.kstr("system", sysPlanID)
		w.kstr("value", p.key)
		w.endObj()
		w.endArr()
		w.kbool("active", true)
		w.kstr("type", "person")
		w.kbool("actual", true)
		w.kstr("name", p.name)
		w.kint("quantity", int64(len(members[pi])))
		w.kref("managingEntity", TypeOrganization, &g.payerIDs[p.payer])
		if len(members[pi]) > 0 {
			w.karr("member")
			for _, m := range members[pi] {
				pid := makeID(g.seed, uint64(m)+1, 0)
				w.obj()
				w.kref("entity", TypePatient, &pid)
				w.endObj()
			}
			w.endArr()
		}
		w.endObj()
		if err := g.send(TypeGroup, &id); err != nil {
			return err
		}
	}
	return nil
}
