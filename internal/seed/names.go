package seed

// Name and place tables. People's names are common US given and family
// names; organizations and plans are invented; cities are real US cities
// with one of their ZIP codes and their standard-time UTC offset.

var givenFemale = []string{
	"Mary", "Patricia", "Jennifer", "Linda", "Elizabeth", "Barbara", "Susan", "Jessica",
	"Sarah", "Karen", "Lisa", "Nancy", "Betty", "Margaret", "Sandra", "Ashley",
	"Kimberly", "Emily", "Donna", "Michelle", "Carol", "Amanda", "Melissa", "Deborah",
	"Stephanie", "Rebecca", "Laura", "Sharon", "Cynthia", "Kathleen", "Amy", "Angela",
	"Maria", "Sofia", "Olivia", "Emma", "Ava", "Isabella", "Mia", "Camila",
}

var givenMale = []string{
	"James", "Robert", "John", "Michael", "David", "William", "Richard", "Joseph",
	"Thomas", "Charles", "Christopher", "Daniel", "Matthew", "Anthony", "Mark", "Donald",
	"Steven", "Paul", "Andrew", "Joshua", "Kenneth", "Kevin", "Brian", "George",
	"Timothy", "Ronald", "Edward", "Jason", "Jeffrey", "Ryan", "Jacob", "Gary",
	"Jose", "Luis", "Carlos", "Liam", "Noah", "Ethan", "Lucas", "Mateo",
}

var familyNames = []string{
	"Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis",
	"Rodriguez", "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas",
	"Taylor", "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White",
	"Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young",
	"Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores",
	"Green", "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell", "Mitchell",
	"Carter", "Roberts", "Chen", "Patel", "Kim", "Okafor", "Murphy", "Cohen",
}

var streetNames = []string{
	"Maple", "Oak", "Pine", "Cedar", "Elm", "Washington", "Lake", "Hill",
	"Park", "Main", "Church", "Highland", "Spring", "Ridge", "Sunset", "Walnut",
	"Chestnut", "River", "Meadow", "Forest", "Franklin", "Lincoln", "Jefferson", "Mill",
}

var streetKinds = []string{"Street", "Avenue", "Road", "Lane", "Drive", "Court", "Way"}

// city is a place with its state, one ZIP code, a phone area code and its
// standard-time offset in minutes. Daylight saving time is ignored: every
// dateTime still names the right instant.
type city struct {
	name, state, zip, area string
	offMin                 int
}

var cities = []city{
	{"Worcester", "MA", "01608", "508", -300},
	{"Springfield", "IL", "62701", "217", -360},
	{"Columbus", "OH", "43215", "614", -300},
	{"Madison", "WI", "53703", "608", -360},
	{"Boise", "ID", "83702", "208", -420},
	{"Albuquerque", "NM", "87102", "505", -420},
	{"Sacramento", "CA", "95814", "916", -480},
	{"Raleigh", "NC", "27601", "919", -300},
	{"Tulsa", "OK", "74103", "918", -360},
	{"Spokane", "WA", "99201", "509", -480},
}

// payer is an insurance company or public program.
type payer struct {
	key, name string
	phone     string
}

// plan is a health plan of a payer; each plan has one Group of its members.
type plan struct {
	key, name     string
	payer         int
	kind          code // Source of Payment Typology
	medicare      bool // for members aged 65 and over
	medicaid      bool
	copay         int64 // cents per visit
	deductiblePct int64 // member's share of the allowed amount after copay
}

var payers = []payer{
	{"evergreen", "Evergreen Health Plan", "800-555-0101"},
	{"summit", "Summit Mutual Insurance Company", "800-555-0102"},
	{"riverbend", "Riverbend Health Alliance", "800-555-0103"},
	{"cms", "Centers for Medicare & Medicaid Services", "800-555-0104"},
	{"prairie", "Prairie State Medicaid Program", "800-555-0105"},
}

var (
	soptMedicare = code{sopt, "1", "MEDICARE"}
	soptMedHMO   = code{sopt, "111", "Medicare HMO"}
	soptMedicaid = code{sopt, "2", "MEDICAID"}
	soptCommHMO  = code{sopt, "511", "Commercial Managed Care - HMO"}
	soptCommPPO  = code{sopt, "512", "Commercial Managed Care - PPO"}
)

var plans = []plan{
	{key: "evergreen-gold-ppo", name: "Evergreen Gold PPO", payer: 0, kind: soptCommPPO, copay: 2500, deductiblePct: 10},
	{key: "evergreen-silver-hmo", name: "Evergreen Silver HMO", payer: 0, kind: soptCommHMO, copay: 3000, deductiblePct: 20},
	{key: "summit-choice-ppo", name: "Summit Choice PPO", payer: 1, kind: soptCommPPO, copay: 2000, deductiblePct: 20},
	{key: "riverbend-select-hmo", name: "Riverbend Select HMO", payer: 2, kind: soptCommHMO, copay: 1500, deductiblePct: 10},
	{key: "riverbend-medicare-advantage", name: "Riverbend Medicare Advantage HMO", payer: 2, kind: soptMedHMO, medicare: true, copay: 1000, deductiblePct: 0},
	{key: "original-medicare", name: "Original Medicare Part B", payer: 3, kind: soptMedicare, medicare: true, deductiblePct: 20},
	{key: "prairie-medicaid", name: "Prairie State Medicaid", payer: 4, kind: soptMedicaid, medicaid: true},
}

// providerKind is a kind of provider organization.
type providerKind int

const (
	clinic providerKind = iota
	urgentCare
	hospital
)

// providerOrg describes a provider Organization: a clinic, urgent care
// center or hospital in one of the cities, with the specialties of its
// practitioners.
type providerOrg struct {
	name  string
	kind  providerKind
	city  int
	staff []code
}

var (
	clinicStaff   = []code{taxFamily, taxInternal, taxPediatric, taxNP}
	urgentStaff   = []code{taxFamily, taxNP}
	hospitalStaff = []code{taxEmergency, taxEmergency, taxInternal}
)

// providerOrgs are built from the cities: one primary care clinic per city,
// an urgent care center in every other city and a hospital per city.
var providerOrgs = func() []providerOrg {
	var out []providerOrg
	for i, c := range cities {
		out = append(out, providerOrg{c.name + " Family Health Center", clinic, i, clinicStaff})
	}
	for i, c := range cities {
		if i%2 == 0 {
			out = append(out, providerOrg{c.name + " Urgent Care", urgentCare, i, urgentStaff})
		}
	}
	for i, c := range cities {
		out = append(out, providerOrg{c.name + " General Hospital", hospital, i, hospitalStaff})
	}
	return out
}()
