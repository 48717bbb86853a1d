package match

import (
	"bufio"
	"compress/gzip"
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/internal/resource"
	"github.com/fhirgate/fhirgate/internal/search"
	"github.com/fhirgate/fhirgate/internal/sqlstore"
	"github.com/fhirgate/fhirgate/internal/store"
	"github.com/fhirgate/fhirgate/internal/testdb"
)

// syntheaDir holds the synthetic data set the differential test loads
// when it is there.
const syntheaDir = "/work/shared/data/synthea-100"

// diffQueries are the searches the differential test runs both ways, by
// type: every parameter type, modifier and prefix, on the hand-written
// resources and on synthea. {patient} is the id of a synthea patient (or
// fp1), {ts} an instant between stored versions, {day} its date.
var diffQueries = map[string][]string{
	"Patient": {
		"", "name=kov", "name=KOVACS", "name=smi", "name=zo", "name=%C3%A5ng", "name=o'n", "family:exact=Kovács",
		"family:exact=kovács", "name:contains=ACOB", "name:contains=ö", "given=eva,john", "name=smith&gender=male",
		"address-city=s%C3%A3o", "address=rua", "address-postalcode=010", "address-country=BR", "address-state=massachusetts",
		"phonetic=smith", "gender=female", "gender:not=female", "gender:missing=true", "active=true", "active=false",
		"active:missing=true", "active:missing=false", "active:not=true", "identifier=A1", "identifier=http://example.org/mrn|A1",
		"identifier=http://example.org/mrn|", "identifier=|A1", "identifier:text=medical", "identifier:text=social",
		"identifier=http://hl7.org/fhir/sid/us-ssn|", "telecom=555-1234", "phone=555-1234", "email=eva@example.org",
		"email:missing=false", "birthdate=1970", "birthdate=1970-03", "birthdate=1970-03-15", "birthdate=ge1980",
		"birthdate=gt1980", "birthdate=lt1980", "birthdate=le1980", "birthdate=sa1980", "birthdate=eb1980", "birthdate=ne1980",
		"birthdate=ap1980", "birthdate=ap1970-03-15", "birthdate=ge1970-03-15&birthdate=le1990", "birthdate:missing=true",
		"death-date=2020", "death-date:missing=false", "deceased=true", "deceased=false", "deceased:missing=true",
		"general-practitioner=Practitioner/fd1", "general-practitioner=fd1", "general-practitioner:Practitioner=fd1",
		"organization=Organization/fo1", "organization=http://example.org/fhir/Organization/fo1", "organization:missing=true",
		"link=Patient/fp1", "_id=fp1,fp3", "_id:not=fp1", "_id:missing=false", "_id:missing=true",
		"_tag=vip", "_tag=http://example.org/tags|vip", "_tag=http://example.org/tags|", "_tag:not=vip", "_tag:text=x",
		"_tag:missing=true", "_security=R", "_security:missing=false", "_profile=http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient",
		"_profile:below=http://hl7.org/fhir/", "_profile:missing=true", "_source=http://example.org/src#load1", "_source:below=http://example.org/src",
		"_source:above=http://example.org/src#load1/x", "_lastUpdated=gt{ts}", "_lastUpdated=le{ts}", "_lastUpdated={day}",
		"_lastUpdated=ne{ts}", "_lastUpdated=ap{ts}", "_lastUpdated=sa{ts}", "_lastUpdated=eb{ts}", "_lastUpdated=ge{ts}",
		"_lastUpdated=lt{ts}", "_lastUpdated=eq{ts}", "_lastUpdated:missing=false", "_lastUpdated:missing=true", "name=a,b,c,d,e,j,k,m&gender=male,female", "language:missing=true",
		"language=en", "language=en&gender=male", "_id={patient}",
	},
	"Observation": {
		"", "status=final", "status=final,amended", "status:not=final", "status:missing=true", "category=laboratory",
		"category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory", "category=|laboratory",
		"category:text=lab", "category:text=vital", "category:missing=true", "category:not=laboratory",
		"code=2345-7", "code=http://loinc.org|2345-7", "code=http://snomed.info/sct|", "code=http://loinc.org|8302-2,http://loinc.org|29463-7",
		"code:text=gluc", "code:text=blood", "code:text=free", "code:text=body", "code:not=2345-7", "code:missing=false",
		"combo-code=8480-6", "component-code=8480-6", "component-code:missing=true",
		"date=2024", "date=2024-03", "date=2024-03-15", "date=2024-03-15T10:00:00Z", "date=2024-03-15T10:00:00.5Z",
		"date=gt2024-03-15", "date=ge2024-03-15", "date=lt2024-03-15", "date=le2024-03-15", "date=sa2023", "date=eb2024",
		"date=ne2024-03-15", "date=ap2024-03-15", "date=ap2016", "date=2020-01-01T01:30:00Z", "date=2022-02-02", "date=2022-03",
		"date=lt2016-05-01T11:00:16Z", "date=ge2016-05-01T07:00:16-04:00", "date:missing=true", "date=2017&date=lt2017-06",
		"date=ge2022-02-10&date=le2022-02-20", "date=gt2022-02-01&date=lt2022-03-04", "date=ge2022&date=lt2023&date=gt2022-02-01",
		"date=2022&date=ge2022-02-10&date=le2022-02-20", "date:missing=false&date=ge2022-02-10&date=le2022-02-20",
		"date=ge2016-01-01&date=lt2016-07-01", "date=ge2016-01-01,ge2017-01-01&date=lt2016-07-01", "date=ge2016&date=lt2016&date=ge2015",
		"value-quantity=95", "value-quantity=95|http://unitsofmeasure.org|mg/dL", "value-quantity=0.95|http://unitsofmeasure.org|g/L",
		"value-quantity=9.5e-4|http://unitsofmeasure.org|kg/L", "value-quantity=95||mg/dL", "value-quantity=5||mg",
		"value-quantity=gt90", "value-quantity=lt0", "value-quantity=le-3.5", "value-quantity=ge100", "value-quantity=ne95",
		"value-quantity=ap95", "value-quantity=sa94", "value-quantity=eb96", "value-quantity=1e2", "value-quantity=100",
		"value-quantity=70|http://unitsofmeasure.org|kg", "value-quantity=70000|http://unitsofmeasure.org|g",
		"value-quantity=gt60|http://unitsofmeasure.org|kg", "value-quantity=170|http://unitsofmeasure.org|cm",
		"value-quantity=1.7|http://unitsofmeasure.org|m", "value-quantity=lt5.5|http://unitsofmeasure.org|mmol/L",
		"value-quantity:missing=true", "value-quantity=-3.5",
		"value-quantity=-3.50", "value-quantity=ap-3.5", "value-quantity=ge37||Cel",
		"component-value-quantity=120", "component-value-quantity=gt100|http://unitsofmeasure.org|mm[Hg]",
		"component-value-quantity=lt90", "combo-value-quantity=80", "combo-value-quantity=95",
		"value-concept=260385009", "value-concept=http://snomed.info/sct|", "value-concept:text=neg",
		"value-concept:text=never", "combo-value-concept=17621005", "component-value-concept=17621005",
		"value-string=positive", "value-string:contains=result", "value-string:exact=Positive Result, see notes",
		"value-string=n%C3%A9g", "value-string=neg", "value-date=2021", "value-date=2021-06-15", "value-date=lt2022",
		"code-value-quantity=http://loinc.org|2345-7$95", "code-value-quantity=http://loinc.org|2345-7$gt90",
		"code-value-quantity=2345-7$0.95|http://unitsofmeasure.org|g/L", "code-value-quantity=http://loinc.org|8302-2$gt170",
		"code-value-quantity=29463-7$70|http://unitsofmeasure.org|kg", "component-code-value-quantity=http://loinc.org|8480-6$120",
		"component-code-value-quantity=8480-6$gt130", "component-code-value-quantity=http://loinc.org|8462-4$lt85",
		"combo-code-value-quantity=8462-4$80", "code-value-concept=5778-6$260385009", "code-value-concept=http://loinc.org|72166-2$http://snomed.info/sct|",
		"combo-code-value-concept=9999-9$17621005", "component-code-value-concept=9999-9$17621005",
		"code-value-date=21112-8$2021", "code-value-date=21112-8$gt2021-07", "code-value-date=21112-8$ap2021-06-10",
		"code-value-string=8310-5$pos", "code-value-string=8310-5$neg",
		"subject=Patient/fp1", "subject=fp1", "subject:Patient=fp1", "subject:Group=g1", "subject=Group/g1", "patient=fp2",
		"patient=Patient/{patient}", "subject=urn:uuid:6f1c1e2a-0000-4000-8000-000000000001", "subject:missing=true",
		"performer=http://example.org/fhir/Practitioner/fd1", "performer=Practitioner/fd1", "performer:missing=false",
		"encounter=http://other.org/fhir/Encounter/e9", "encounter=e9", "has-member=Observation/fob-a",
		"derived-from=fob-c", "_id=fob-a,fob-b", "_id:not=fob-a", "_tag=t1", "_tag=t1&_tag=t2", "_tag=t1,vip",
		"_security=HIV", "_security=http://terminology.hl7.org/CodeSystem/v3-ActCode|HIV", "_security:not=HIV",
		"_profile=http://example.org/fhir/StructureDefinition/lab", "_profile:missing=false",
		"status=final&category=laboratory&date=ge2016", "category=vital-signs&code=8302-2&value-quantity=gt150",
		"code=72514-3&value-quantity=ge5||{score}", "_lastUpdated=gt{ts}&category=laboratory", "_lastUpdated=le{ts}",
		"data-absent-reason:missing=false", "method:missing=true", "value-concept:not=260385009",
		"identifier:missing=true",
	},
	"RiskAssessment": {
		"probability=0.25", "probability=0.250", "probability=0.2", "probability=ge0.25", "probability=gt0.25",
		"probability=lt0.2", "probability=le0.1", "probability=ne0.25", "probability=ap0.25", "probability=sa0.2",
		"probability=eb0.3", "probability=0.1", "probability=1e-1", "probability=100", "probability=gt50",
		"probability:missing=true", "subject=fp1", "subject:missing=true",
	},
	"ValueSet": {
		"url=http://example.org/fhir/ValueSet/a", "url:below=http://example.org/fhir/ValueSet/a",
		"url:below=http://example.org/fhir/ValueSet/a/", "url:above=http://example.org/fhir/ValueSet/a/b/c",
		"url:above=http://example.org/fhir/ValueSet/abc", "url:below=urn:oid:", "url:missing=true", "url=urn:oid:1.2.3",
		"version=1.0", "name=a", "name:exact=A", "status=active", "status:not=active", "date=2020", "context-type=age",
		"context-quantity=18", "context-quantity=gt15|http://unitsofmeasure.org|a", "context-quantity=15",
		"context-type-quantity=age$18", "context-type-quantity=age$gt15", "context-type-quantity=http://terminology.hl7.org/CodeSystem/usage-context-type|age$lt12",
		"context-type-quantity=age$15|http://unitsofmeasure.org|a", "context-type-value=focus$123",
		"context-type-value=focus$http://snomed.info/sct|123", "context-type-value=age$123", "context-type-quantity:missing=true",
	},
	"Encounter": {
		"class=AMB", "class=http://terminology.hl7.org/CodeSystem/v3-ActCode|AMB", "class=|IMP", "class:not=AMB",
		"date=2024", "date=ge2024-03-15", "date=lt2020-01-02", "date=2020-01-02", "date=2020-01", "date=ap2020-01-02",
		"date=sa2019", "date=eb2025", "date=ne2020-01-02", "date=gt2040", "date=le2017-10-24T22:29:15-04:00",
		"date=ge2015&date=lt2016", "date=gt2019-12-31&date=le2020-01-02&class=IMP",
		"length=30|http://unitsofmeasure.org|min", "length=0.5|http://unitsofmeasure.org|h", "length=1800|http://unitsofmeasure.org|s",
		"length=2|http://unitsofmeasure.org|d", "length=gt1", "length:missing=true", "type:text=inpatient", "type:text=encounter",
		"type=185349003", "reason-code=44054006", "status=finished", "subject=Patient/{patient}", "service-provider:missing=true",
		"participant-type=PPRF", "practitioner:missing=false",
	},
	"MolecularSequence": {
		"chromosome=1", "window-start=100", "window-start=gt50", "window-start=10.5", "window-start=lt11",
		"window-end=200", "chromosome-window-coordinate=1$100$200", "chromosome-window-coordinate=1$gt50$lt300",
		"chromosome-window-coordinate=2$10.5$20", "chromosome-window-coordinate=2$10$20", "chromosome-window-coordinate=1$lt50$200",
		"variant-start=150", "chromosome-variant-coordinate=1$150$151", "chromosome-variant-coordinate=1$ge150$gt151", "type=dna",
	},
	"Group": {
		"characteristic=gender", "characteristic-value=gender$female", "characteristic-value=http://example.org/c|gender$http://hl7.org/fhir/administrative-gender|female",
		"characteristic-value=smoker$true", "characteristic-value=gender$true", "value=true", "exclude=true", "exclude=false",
		"member=Patient/fp1", "member=fp4", "actual=true", "type=person", "characteristic:missing=true",
	},
	"DocumentReference": {
		"relatesto=DocumentReference/fdr0", "relatesto=fdr0", "relatesto=http://other.org/fhir/DocumentReference/x", "relation=replaces",
		"relationship=DocumentReference/fdr0$replaces", "relationship=DocumentReference/fdr0$appends",
		"relationship=http://other.org/fhir/DocumentReference/x$appends", "relationship=fdr0$replaces",
		"date=2024-03-15", "date=2024-03-15T09:00:00Z", "date=2024-03-15T10:00:00%2B01:00", "date=lt2024-03-15T09:00:00.000001Z",
		"period=2024-03", "period=2024-03-10", "period=ap2024-03-10", "contenttype=text/plain", "language=en", "location=http://example.org/docs/1",
		"location:below=http://example.org/", "type=http://loinc.org|11506-3", "status=current", "subject=Patient/{patient}",
	},
	"Condition": {
		"onset-age=40", "onset-age=40|http://unitsofmeasure.org|a", "onset-age=gt35", "onset-age=32", "onset-age=ap33",
		"onset-age=480|http://unitsofmeasure.org|mo", "onset-age:missing=true", "onset-date=2015", "onset-date=2016-06",
		"onset-date=ge2016-01-01", "onset-date=sa2014", "onset-date=lt2010", "onset-info=child", "abatement-string=after",
		"code=44054006", "code:text=diab", "code:text=something", "clinical-status=active", "clinical-status:missing=true",
		"recorded-date=2010", "recorded-date=ge2016-09-05", "subject=Patient/{patient}", "code=http://snomed.info/sct|",
		"verification-status=confirmed", "abatement-date:missing=false",
	},
	"CarePlan": {
		"activity-date=2024-02", "activity-date=2024-02-15", "activity-date=2023-05-05", "activity-date=lt2023-06",
		"activity-date=ge2023-06&activity-date=le2024-01-15", "activity-date=gt2023-05-05T10:30:00Z&activity-date=lt2024-02-02",
		"activity-date:missing=true", "date=ge2024", "date=2003", "date=ap2003-06-01", "status=active", "intent=plan",
		"category=53950000", "category:text=respir", "subject=Patient/{patient}",
	},
	"Claim": {
		"use=claim", "status=active", "created=2020", "created=ge2020-04-17T16:33:22-04:00", "created=lt2010",
		"patient=Patient/{patient}", "priority=normal", "provider:missing=true", "care-team:missing=false",
		"encounter:missing=false", "item-udi:missing=true", "_lastUpdated=gt{ts}",
	},
	"ExplanationOfBenefit": {
		"status=active", "created=2015", "created=ge2019", "patient=Patient/{patient}", "coverage:missing=true", "provider:missing=false",
		"claim:missing=false",
	},
	"MedicationRequest": {
		"status=stopped", "status:not=stopped", "intent=order", "code=308192", "code:text=amox", "authoredon=2018",
		"authoredon=ap2018-08-29", "authoredon=sa2019", "requester:missing=false", "medication:missing=true",
		"patient=Patient/{patient}", "encounter:missing=false",
	},
	"Immunization": {
		"vaccine-code=140", "vaccine-code=http://hl7.org/fhir/sid/cvx|140", "vaccine-code:text=influenza", "date=2012",
		"date=ge2015", "date=eb2010", "status=completed", "patient=Patient/{patient}", "lot-number:missing=true",
	},
	"DiagnosticReport": {
		"category=LAB", "category:text=labor", "code=57698-3", "date=2012-10-24", "issued=ge2012-10-24T07:31:58.211-04:00",
		"issued=lt2012-10-24T07:31:58.212-04:00", "result:missing=false", "status=final", "subject=Patient/{patient}",
		"conclusion:missing=true",
	},
	"Procedure":          {"date=2015", "date=ge2019-06", "code:text=screen", "status=completed", "patient=Patient/{patient}", "reason-code:missing=false"},
	"AllergyIntolerance": {"criticality=low", "clinical-status=active", "code:text=allerg", "onset=ge2010", "category=food", "type=allergy"},
	"CareTeam":           {"status=active", "date=ge2015", "date=ap2010", "category:text=", "participant:missing=false"},
	"Organization":       {"name=hospital", "name:contains=clinic", "address-city=boston", "address-state=MA", "type=prov", "partof=fo1", "active=true"},
	"Practitioner":       {"name=dr", "family=who", "identifier=http://hl7.org/fhir/sid/us-npi|", "gender=female", "active=true", "address-city:missing=false"},
	"Device":             {"type:text=", "status=active", "patient:missing=false", "udi-di:missing=true"},
	"ImagingStudy":       {"started=ge2015", "modality=DX", "status=available", "bodysite:missing=false"},
}

// stepClock is a test clock whose time the test sets.
type stepClock struct{ us atomic.Int64 }

func (c *stepClock) Now() time.Time  { return time.UnixMicro(c.us.Load()).UTC() }
func (c *stepClock) Set(t time.Time) { c.us.Store(t.UnixMicro()) }

// TestMatchesSQLSearch is the differential test: on each backend it
// stores a varied data set, runs every query of diffQueries through the
// SQL search and through a Matcher on every stored resource, and expects
// the same resources from both.
func TestMatchesSQLSearch(t *testing.T) {
	testdb.Each(t, func(t *testing.T, newURL func(testing.TB) string) {
		t.Parallel()
		ctx := context.Background()
		clock := &stepClock{}
		clock.Set(time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC))
		s, err := sqlstore.Open(ctx, newURL(t), sqlstore.Options{Now: clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		n := loadDiffData(t, s, clock)
		clock.Set(time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)) // the "now" of ap, the same for both
		subst := placeholders(t, s)
		t.Logf("%d resources stored; placeholders %v", n, subst)

		var queries, nonTrivial int
		for _, typ := range sortedKeys(diffQueries) {
			docs := storedDocs(t, s, typ)
			if len(docs) == 0 {
				continue
			}
			for _, raw := range diffQueries[typ] {
				for k, v := range subst {
					raw = strings.ReplaceAll(raw, k, v)
				}
				sqlIDs, goIDs := runBoth(t, s, clock, typ, raw, docs)
				queries++
				if len(sqlIDs) > 0 && len(sqlIDs) < len(docs) {
					nonTrivial++
				}
				if !slices.Equal(sqlIDs, goIDs) {
					t.Errorf("%s?%s: SQL and matcher differ (%d vs %d of %d)\n  only SQL: %v\n  only matcher: %v",
						typ, raw, len(sqlIDs), len(goIDs), len(docs), first(minus(sqlIDs, goIDs), 5), first(minus(goIDs, sqlIDs), 5))
				}
			}
		}
		t.Logf("%d queries, %d of them selecting some but not all resources", queries, nonTrivial)
		if nonTrivial < queries/2 {
			t.Fatalf("only %d of %d queries select some but not all resources: the data set does not exercise them", nonTrivial, queries)
		}
	})
}

// storedDoc is a stored resource with its index rows extracted.
type storedDoc struct {
	id   string
	body []byte
	doc  doc
}

// runBoth returns the ids that the SQL search and the Matcher select.
// The Matcher runs on the extracted rows of every resource, and through
// Match on the body of a sample (all of a small type), so both paths are
// compared.
func runBoth(t *testing.T, s *sqlstore.Store, clock *stepClock, typ, raw string, docs []storedDoc) (sqlIDs, goIDs []string) {
	t.Helper()
	vals, err := url.ParseQuery(raw)
	if err != nil {
		t.Fatalf("%s?%s: %v", typ, raw, err)
	}
	q, _, err := search.ParseQuery(typ, vals, true)
	if err != nil {
		t.Fatalf("%s?%s: %v", typ, raw, err)
	}
	page, err := s.Search(context.Background(), sqlstore.SearchSpec{Query: q, Count: 1 << 20})
	if err != nil {
		t.Fatalf("SQL %s?%s: %v", typ, raw, err)
	}
	for _, m := range page.Matches {
		sqlIDs = append(sqlIDs, m.ID)
	}
	sort.Strings(sqlIDs)
	m, err := Compiler{Now: clock.Now}.Compile(typ, []url.Values{vals})
	if err != nil {
		t.Fatalf("compile %s?%s: %v", typ, raw, err)
	}
	step := max(1, len(docs)/200)
	for i := range docs {
		d := &docs[i]
		ok := m.matchDoc(&d.doc)
		if ok {
			goIDs = append(goIDs, d.id)
		}
		if i%step == 0 || strings.HasPrefix(d.id, "f") {
			viaBody, err := m.Match(d.body)
			if err != nil || viaBody != ok {
				t.Fatalf("%s?%s on %s: Match = %v, %v; on its rows %v", typ, raw, d.id, viaBody, err, ok)
			}
		}
	}
	sort.Strings(goIDs)
	return sqlIDs, goIDs
}

// loadDiffData stores the hand-written resources (some updated, one
// deleted) and synthea when present, in transactions of up to 500
// resources with the clock a second apart, so that _lastUpdated varies.
func loadDiffData(t *testing.T, s *sqlstore.Store, clock *stepClock) int {
	t.Helper()
	bodies := append([]string(nil), tricky...)
	bodies = append(bodies, `{"resourceType":"Observation","id":"fob-gone","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"2345-7"}]}}`)
	n := writeAll(t, s, clock, bodies)
	// A second version of fp2 and the deletion of fob-gone: searches see
	// the current versions of live resources only.
	n += writeAll(t, s, clock, []string{strings.Replace(tricky[1], `"active":false`, `"active":false,"communication":[{"language":{"coding":[{"system":"urn:ietf:bcp:47","code":"en"}]}}]`, 1)})
	err := s.Write(context.Background(), func(tx store.Tx) error {
		_, err := tx.Delete(context.Background(), "Observation", "fob-gone", 0)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(syntheaDir); err != nil || testing.Short() {
		t.Logf("synthea-100 not loaded (%s absent or -short): hand-written resources only", syntheaDir)
		return n
	}
	files, _ := filepath.Glob(filepath.Join(syntheaDir, "*.ndjson.gz"))
	for _, f := range files {
		lines := readNDJSON(t, f)
		if syntheaPerFile > 0 && len(lines) > syntheaPerFile {
			lines = lines[:syntheaPerFile]
		}
		n += writeAll(t, s, clock, lines)
	}
	return n
}

func writeAll(t *testing.T, s *sqlstore.Store, clock *stepClock, bodies []string) int {
	t.Helper()
	ctx := context.Background()
	n := len(bodies)
	for len(bodies) > 0 {
		batch := bodies[:min(500, len(bodies))]
		bodies = bodies[len(batch):]
		clock.Set(clock.Now().Add(time.Second))
		err := s.Write(ctx, func(tx store.Tx) error {
			for _, b := range batch {
				r, err := resource.Parse([]byte(b))
				if err != nil {
					return fmt.Errorf("%.80s: %w", b, err)
				}
				if _, _, err := tx.Update(ctx, r, 0); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return n
}

func readNDJSON(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(z)
	sc.Buffer(nil, 16<<20)
	var out []string
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// storedDocs reads the current versions of the live resources of typ,
// with their index rows.
func storedDocs(t *testing.T, s *sqlstore.Store, typ string) []storedDoc {
	t.Helper()
	page, err := s.Search(context.Background(), sqlstore.SearchSpec{Query: &search.Query{Type: typ}, Count: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]storedDoc, 0, len(page.Matches))
	for _, m := range page.Matches {
		res, err := search.Decode(m.Body)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := search.NewExtractor().ExtractDecoded(typ, res)
		if err != nil {
			t.Fatal(err)
		}
		d := storedDoc{id: m.ID, body: m.Body, doc: doc{id: m.ID, rows: rows}}
		d.doc.ts, d.doc.hasTS = lastUpdated(res)
		if !d.doc.hasTS || d.doc.ts != m.LastUpdated.UnixMicro() {
			t.Fatalf("%s/%s: meta.lastUpdated %v differs from the stored %v", typ, m.ID, d.doc.ts, m.LastUpdated)
		}
		out = append(out, d)
	}
	return out
}

// placeholders picks the values of {patient}, {ts} and {day}: a patient
// of the data set, and an instant in the middle of the stored versions.
func placeholders(t *testing.T, s *sqlstore.Store) map[string]string {
	t.Helper()
	docs := storedDocs(t, s, "Patient")
	var ids []string
	var stamps []int64
	for _, d := range docs {
		ids = append(ids, d.id)
		stamps = append(stamps, d.doc.ts)
	}
	for _, typ := range []string{"Observation", "Claim"} {
		for _, d := range storedDocs(t, s, typ) {
			stamps = append(stamps, d.doc.ts)
		}
	}
	sort.Strings(ids)
	slices.Sort(stamps)
	patient := "fp1"
	for _, id := range ids {
		if !strings.HasPrefix(id, "fp") {
			patient = id
			break
		}
	}
	mid := time.UnixMicro(stamps[len(stamps)/2]).UTC()
	return map[string]string{"{patient}": patient, "{ts}": url.QueryEscape(fhir.FormatInstant(mid)), "{day}": mid.Format("2006-01-02")}
}

func sortedKeys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func minus(a, b []string) []string {
	var out []string
	for _, x := range a {
		if _, found := slices.BinarySearch(b, x); !found {
			out = append(out, x)
		}
	}
	return out
}

func first(s []string, n int) []string { return s[:min(n, len(s))] }

// TestDiffQueriesParse keeps the table of the differential test honest:
// every query parses strictly.
func TestDiffQueriesParse(t *testing.T) {
	for typ, qs := range diffQueries {
		for _, raw := range qs {
			raw = strings.NewReplacer("{patient}", "p1", "{ts}", "2024-01-01T00:00:00Z", "{day}", "2024-01-01").Replace(raw)
			vals, err := url.ParseQuery(raw)
			if err == nil {
				_, err = Compile(typ, []url.Values{vals})
			}
			if err != nil {
				t.Errorf("%s?%s: %v", typ, raw, err)
			}
		}
	}
}
