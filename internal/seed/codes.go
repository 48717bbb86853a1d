package seed

// Code systems. Every code below is a real code of the named system; displays
// follow the system's preferred terms.
const (
	loinc    = "http://loinc.org"
	snomed   = "http://snomed.info/sct"
	rxnorm   = "http://www.nlm.nih.gov/research/umls/rxnorm"
	cvx      = "http://hl7.org/fhir/sid/cvx"
	icd10cm  = "http://hl7.org/fhir/sid/icd-10-cm"
	ucum     = "http://unitsofmeasure.org"
	nucc     = "http://nucc.org/provider-taxonomy"
	npiSys   = "http://hl7.org/fhir/sid/us-npi"
	sopt     = "https://nahdo.org/sopt"
	tho      = "http://terminology.hl7.org/CodeSystem/"
	usCoreSD = "http://hl7.org/fhir/us/core/StructureDefinition/"
	cdcRace  = "urn:oid:2.16.840.1.113883.6.238"

	// Identifier systems of the synthetic data set itself. example.org is
	// reserved for documentation (RFC 2606), which keeps the identifiers
	// from colliding with a real organization's.
	sysMRN      = "https://example.org/fhirgate/sid/mrn"
	sysMemberID = "https://example.org/fhirgate/sid/member-id"
	sysPayerID  = "https://example.org/fhirgate/sid/payer-id"
	sysPlanID   = "https://example.org/fhirgate/sid/plan-id"
	sysClaimID  = "https://example.org/fhirgate/sid/claim-id"
)

// code is one Coding.
type code struct{ system, code, display string }

func sct(c, d string) code      { return code{snomed, c, d} }
func icd(c, d string) code      { return code{icd10cm, c, d} }
func lnc(c, d string) code      { return code{loinc, c, d} }
func rx(c, d string) code       { return code{rxnorm, c, d} }
func thoc(cs, c, d string) code { return code{tho + cs, c, d} }

// Fixed codings used by several resources.
var (
	catVitalSigns   = thoc("observation-category", "vital-signs", "Vital Signs")
	catLaboratory   = thoc("observation-category", "laboratory", "Laboratory")
	clinicalActive  = thoc("condition-clinical", "active", "Active")
	clinicalResolve = thoc("condition-clinical", "resolved", "Resolved")
	verConfirmed    = thoc("condition-ver-status", "confirmed", "Confirmed")
	catEncounterDx  = thoc("condition-category", "encounter-diagnosis", "Encounter Diagnosis")
	catProblemList  = thoc("condition-category", "problem-list-item", "Problem List Item")
	allergyActive   = thoc("allergyintolerance-clinical", "active", "Active")
	allergyConfirm  = thoc("allergyintolerance-verification", "confirmed", "Confirmed")
	classAMB        = code{"http://terminology.hl7.org/CodeSystem/v3-ActCode", "AMB", "ambulatory"}
	classEMER       = code{"http://terminology.hl7.org/CodeSystem/v3-ActCode", "EMER", "emergency"}
	partPrimary     = code{"http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "PPRF", "primary performer"}
	idTypeMR        = thoc("v2-0203", "MR", "Medical record number")
	idTypeMB        = thoc("v2-0203", "MB", "Member Number")
	idTypeNPI       = thoc("v2-0203", "NPI", "National provider identifier")
	orgTypePayer    = thoc("organization-type", "pay", "Payer")
	orgTypeProvider = thoc("organization-type", "prov", "Healthcare Provider")
	relSelf         = thoc("subscriber-relationship", "self", "Self")
	relChild        = thoc("subscriber-relationship", "child", "Child")
	classGroup      = thoc("coverage-class", "group", "Group")
	classPlan       = thoc("coverage-class", "plan", "Plan")
	claimProf       = thoc("claim-type", "professional", "Professional")
	claimInst       = thoc("claim-type", "institutional", "Institutional")
	priorityNormal  = thoc("processpriority", "normal", "Normal")
	careTeamPrimary = thoc("claimcareteamrole", "primary", "Primary provider")
	dxPrincipal     = thoc("ex-diagnosistype", "principal", "Principal Diagnosis")
	dxSecondary     = thoc("ex-diagnosistype", "secondary", "Secondary Diagnosis")
	adjSubmitted    = thoc("adjudication", "submitted", "Submitted Amount")
	adjEligible     = thoc("adjudication", "eligible", "Eligible Amount")
	adjCopay        = thoc("adjudication", "copay", "CoPay")
	adjDeductible   = thoc("adjudication", "deductible", "Deductible")
	adjBenefit      = thoc("adjudication", "benefit", "Benefit Amount")
	payComplete     = thoc("ex-paymenttype", "complete", "Complete")
	posOffice       = thoc("ex-serviceplace", "11", "Office")
	posUrgent       = thoc("ex-serviceplace", "20", "Urgent Care Facility")
	posER           = thoc("ex-serviceplace", "23", "Emergency Room – Hospital")
	langEnglish     = code{"urn:ietf:bcp:47", "en-US", "English (United States)"}
	langSpanish     = code{"urn:ietf:bcp:47", "es", "Spanish"}
)

// Vital signs (FHIR R4 observation-vitalsigns profile codes) and labs.
var (
	loincBPPanel   = lnc("85354-9", "Blood pressure panel with all children optional")
	loincSystolic  = lnc("8480-6", "Systolic blood pressure")
	loincDiastolic = lnc("8462-4", "Diastolic blood pressure")
	loincHeartRate = lnc("8867-4", "Heart rate")
	loincRespRate  = lnc("9279-1", "Respiratory rate")
	loincHeight    = lnc("8302-2", "Body height")
	loincWeight    = lnc("29463-7", "Body weight")
	loincBMI       = lnc("39156-5", "Body mass index (BMI) [Ratio]")
	loincTemp      = lnc("8310-5", "Body temperature")
	// loincHbA1c is the code, display and text of the HbA1c observation in
	// the seed aidbox-client-secret-basic.txt.
	loincHbA1c   = lnc("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood")
	loincGlucose = lnc("2339-0", "Glucose [Mass/volume] in Blood")
	loincChol    = lnc("2093-3", "Cholesterol [Mass/volume] in Serum or Plasma")
	loincHDL     = lnc("2085-9", "Cholesterol in HDL [Mass/volume] in Serum or Plasma")
	loincLDL     = lnc("18262-6", "Cholesterol in LDL [Mass/volume] in Serum or Plasma by Direct assay")
	loincTrig    = lnc("2571-8", "Triglyceride [Mass/volume] in Serum or Plasma")
	loincHgb     = lnc("718-7", "Hemoglobin [Mass/volume] in Blood")
	loincHct     = lnc("4544-3", "Hematocrit [Volume Fraction] of Blood by Automated count")
)

// medication is a prescribable drug with its usual sig.
type medication struct {
	code     code
	sig      string
	perDay   int  // doses per day
	asNeeded bool // taken when needed rather than on a schedule
}

var (
	medHCTZ       = &medication{rx("310798", "Hydrochlorothiazide 25 MG Oral Tablet"), "Take 1 tablet by mouth once daily", 1, false}
	medMetformin  = &medication{rx("860975", "24 HR Metformin hydrochloride 500 MG Extended Release Oral Tablet"), "Take 1 tablet by mouth once daily with the evening meal", 1, false}
	medSimva      = &medication{rx("314231", "Simvastatin 10 MG Oral Tablet"), "Take 1 tablet by mouth every evening", 1, false}
	medFluticas   = &medication{rx("895994", "120 ACTUAT Fluticasone propionate 0.044 MG/ACTUAT Metered Dose Inhaler"), "Inhale 2 puffs twice daily", 2, false}
	medNaproxen   = &medication{rx("849574", "Naproxen sodium 220 MG Oral Tablet"), "Take 1 tablet by mouth every 12 hours as needed for pain", 2, true}
	medWarfarin   = &medication{rx("855332", "Warfarin Sodium 5 MG Oral Tablet"), "Take 1 tablet by mouth once daily", 1, false}
	medPenicillin = &medication{rx("834061", "Penicillin V Potassium 250 MG Oral Tablet"), "Take 1 tablet by mouth four times daily for 10 days", 4, false}
	medAmoxicill  = &medication{rx("308182", "Amoxicillin 250 MG Oral Capsule"), "Take 1 capsule by mouth three times daily for 10 days", 3, false}
	medAcetamin   = &medication{rx("313782", "Acetaminophen 325 MG Oral Tablet"), "Take 2 tablets by mouth every 6 hours as needed for fever", 4, true}
	medIbuprofen  = &medication{rx("310965", "Ibuprofen 200 MG Oral Tablet"), "Take 2 tablets by mouth every 8 hours as needed for pain", 3, true}
)

// condition is a diagnosis with its ICD-10-CM billing code and the drug and
// procedure (if any) that usually come with it.
type condition struct {
	code           code
	icd            code
	med            *medication
	proc           *code
	minAge, maxAge int
	er             bool // treated in an emergency department
}

// sctp returns a pointer to a SNOMED CT coding, for optional procedures.
func sctp(c, d string) *code { x := sct(c, d); return &x }

// chronicConditions are diagnosed at a wellness visit and stay on the
// problem list.
var chronicConditions = []condition{
	{code: sct("59621000", "Essential hypertension"), icd: icd("I10", "Essential (primary) hypertension"), med: medHCTZ, minAge: 30, maxAge: 200},
	{code: sct("44054006", "Diabetes mellitus type 2"), icd: icd("E11.9", "Type 2 diabetes mellitus without complications"), med: medMetformin, minAge: 30, maxAge: 200},
	{code: sct("15777000", "Prediabetes"), icd: icd("R73.03", "Prediabetes"), minAge: 25, maxAge: 200},
	{code: sct("55822004", "Hyperlipidemia"), icd: icd("E78.5", "Hyperlipidemia, unspecified"), med: medSimva, minAge: 30, maxAge: 200},
	{code: sct("195967001", "Asthma"), icd: icd("J45.909", "Unspecified asthma, uncomplicated"), med: medFluticas, minAge: 18, maxAge: 200},
	{code: sct("233678006", "Childhood asthma"), icd: icd("J45.909", "Unspecified asthma, uncomplicated"), med: medFluticas, minAge: 0, maxAge: 17},
	{code: sct("239873007", "Osteoarthritis of knee"), icd: icd("M17.9", "Osteoarthritis of knee, unspecified"), med: medNaproxen, minAge: 45, maxAge: 200},
	{code: sct("162864005", "Body mass index 30+ - obesity"), icd: icd("E66.9", "Obesity, unspecified"), minAge: 10, maxAge: 200},
	{code: sct("40055000", "Chronic sinusitis"), icd: icd("J32.9", "Chronic sinusitis, unspecified"), minAge: 18, maxAge: 200},
	{code: sct("49436004", "Atrial fibrillation"), icd: icd("I48.91", "Unspecified atrial fibrillation"), med: medWarfarin, minAge: 60, maxAge: 200},
}

// Indexes into chronicConditions that other choices depend on.
const (
	chronicHypertension   = 0
	chronicDiabetes       = 1
	chronicPrediabetes    = 2
	chronicHyperlipidemia = 3
	chronicObesity        = 7
)

// acuteConditions bring a patient in between wellness visits.
var acuteConditions = []condition{
	{code: sct("444814009", "Viral sinusitis"), icd: icd("J01.90", "Acute sinusitis, unspecified"), minAge: 0, maxAge: 200},
	{code: sct("195662009", "Acute viral pharyngitis"), icd: icd("J02.9", "Acute pharyngitis, unspecified"), minAge: 0, maxAge: 200},
	{code: sct("10509002", "Acute bronchitis"), icd: icd("J20.9", "Acute bronchitis, unspecified"), med: medAcetamin, proc: sctp("399208008", "Plain chest X-ray"), minAge: 0, maxAge: 200},
	{code: sct("43878008", "Streptococcal sore throat"), icd: icd("J02.0", "Streptococcal pharyngitis"), med: medPenicillin, proc: sctp("117015009", "Throat culture"), minAge: 0, maxAge: 200},
	{code: sct("65363002", "Otitis media"), icd: icd("H66.90", "Otitis media, unspecified, unspecified ear"), med: medAmoxicill, minAge: 0, maxAge: 17},
	{code: sct("44465007", "Sprain of ankle"), icd: icd("S93.409A", "Sprain of unspecified ligament of unspecified ankle, initial encounter"), med: medIbuprofen, minAge: 0, maxAge: 200, er: true},
	{code: sct("70704007", "Sprain of wrist"), icd: icd("S63.509A", "Unspecified sprain of unspecified wrist, initial encounter"), med: medNaproxen, minAge: 12, maxAge: 200, er: true},
	{code: sct("284551006", "Laceration of foot"), icd: icd("S91.319A", "Laceration without foreign body, unspecified foot, initial encounter"), proc: sctp("288086009", "Suture open wound"), minAge: 0, maxAge: 200, er: true},
	{code: sct("403190006", "First degree burn"), icd: icd("T30.1", "Burn of first degree, body region unspecified"), minAge: 0, maxAge: 200, er: true},
}

// allergy is an AllergyIntolerance code with its category and the reaction
// it usually causes.
type allergy struct {
	code     code
	category string
	reaction code
}

var (
	reactRash    = sct("271807003", "Eruption of skin")
	reactWheal   = sct("247472004", "Wheal")
	reactDyspnea = sct("267036007", "Dyspnea")
)

var allergies = []allergy{
	{sct("419474003", "Allergy to mold"), "environment", reactDyspnea},
	{sct("418689008", "Allergy to grass pollen"), "environment", reactDyspnea},
	{sct("232347008", "Dander (animal) allergy"), "environment", reactWheal},
	{sct("232350006", "House dust mite allergy"), "environment", reactDyspnea},
	{sct("419263009", "Allergy to tree pollen"), "environment", reactDyspnea},
	{sct("91934008", "Allergy to nut"), "food", reactRash},
	{sct("300913006", "Shellfish allergy"), "food", reactRash},
	{sct("425525006", "Allergy to dairy product"), "food", reactRash},
	{sct("424213003", "Allergy to bee venom"), "environment", reactWheal},
	{sct("91935009", "Allergy to peanuts"), "food", reactRash},
}

// Encounter types (SNOMED CT) and the wellness-visit diagnoses (ICD-10-CM).
var (
	encCheckUp    = sct("185349003", "Encounter for check up")
	encWellChild  = sct("410620009", "Well child visit")
	encSymptom    = sct("185345009", "Encounter for symptom")
	encEmergency  = sct("50849002", "Emergency room admission")
	dxAdultExam   = icd("Z00.00", "Encounter for general adult medical examination without abnormal findings")
	dxChildExam   = icd("Z00.129", "Encounter for routine child health examination without abnormal findings")
	procMedRecon  = sct("430193006", "Medication reconciliation")
	procDepScreen = sct("171207006", "Depression screening")
)

// vaccine is an immunization (CVX) and the ages at which it is given.
type vaccine struct {
	code           code
	minAge, maxAge int
}

// vaccines lists the CVX codes given at wellness visits; influenza is the
// default every year, the others replace it at the ages they are due.
var (
	vaxFlu   = vaccine{code{cvx, "140", "Influenza, seasonal, injectable, preservative free"}, 0, 200}
	vaccines = []vaccine{
		{code{cvx, "20", "DTaP"}, 4, 6},
		{code{cvx, "10", "IPV"}, 4, 6},
		{code{cvx, "03", "MMR"}, 4, 6},
		{code{cvx, "21", "varicella"}, 4, 6},
		{code{cvx, "115", "Tdap"}, 11, 12},
		{code{cvx, "114", "meningococcal MCV4P"}, 11, 16},
		{code{cvx, "165", "HPV9"}, 11, 14},
		{code{cvx, "113", "Td (adult) preservative free"}, 19, 200},
		{code{cvx, "187", "zoster vaccine recombinant"}, 50, 200},
		{code{cvx, "33", "pneumococcal polysaccharide vaccine, 23 valent"}, 65, 200},
	}
)

// Race and ethnicity of the US Core extensions (CDC Race and Ethnicity code
// system, OMB categories).
var (
	races = []code{
		{cdcRace, "2106-3", "White"},
		{cdcRace, "2054-5", "Black or African American"},
		{cdcRace, "2028-9", "Asian"},
		{cdcRace, "1002-5", "American Indian or Alaska Native"},
		{cdcRace, "2076-8", "Native Hawaiian or Other Pacific Islander"},
	}
	raceWeights = []int{60, 14, 7, 2, 1}
	hispanic    = code{cdcRace, "2135-2", "Hispanic or Latino"}
	nonHispanic = code{cdcRace, "2186-5", "Not Hispanic or Latino"}
)

// maritalStatuses are v3-MaritalStatus codes for adults.
var (
	maritalStatuses = []code{
		{tho + "v3-MaritalStatus", "S", "Never Married"},
		{tho + "v3-MaritalStatus", "M", "Married"},
		{tho + "v3-MaritalStatus", "D", "Divorced"},
		{tho + "v3-MaritalStatus", "W", "Widowed"},
	}
	maritalWeights = []int{30, 50, 13, 7}
)

// Provider taxonomy (NUCC) of the practitioners.
var (
	taxFamily    = code{nucc, "207Q00000X", "Family Medicine Physician"}
	taxInternal  = code{nucc, "207R00000X", "Internal Medicine Physician"}
	taxPediatric = code{nucc, "208000000X", "Pediatrics Physician"}
	taxNP        = code{nucc, "363L00000X", "Nurse Practitioner"}
	taxEmergency = code{nucc, "207P00000X", "Emergency Medicine Physician"}
)
