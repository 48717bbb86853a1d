package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/fhirgate/fhirgate/fhir"
)

func mustParse(t testing.TB, body string) *Policy {
	t.Helper()
	p, err := Parse([]byte(body))
	if err != nil {
		t.Fatalf("Parse(%s): %v", body, err)
	}
	return p
}

func quiet() Option { return WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))) }

// The policies of the seeds aidbox-smart-backend-services.md and
// aidbox-client-secret-basic.txt.
const (
	seedAllow = `{"engine": "allow", "link": [{"id": "inferno-my-clinic-bulk-client", "resourceType": "Client"}]}`
	seedBasic = `{"id": "client-confidential-symmetric-allow", "engine": "allow",
		"link": [{"resourceType": "Client", "id": "client-confidential-symmetric"}]}`
)

func TestSeedPolicies(t *testing.T) {
	p := mustParse(t, seedAllow)
	if p.Engine != EngineAllow || !slices.Equal(p.Clients, []string{"inferno-my-clinic-bulk-client"}) || p.Global() {
		t.Fatalf("policy = %+v", p)
	}
	q, err := ParseFor("client-confidential-symmetric-allow", []byte(seedBasic))
	if err != nil || q.ID != "client-confidential-symmetric-allow" {
		t.Fatalf("%+v %v", q, err)
	}
	e := NewEngine([]*Policy{p, q}, quiet())
	for _, tt := range []struct {
		client string
		want   bool
	}{
		{"inferno-my-clinic-bulk-client", true}, {"client-confidential-symmetric", true}, {"someone-else", false},
	} {
		ok, reason := e.Allow(Request{Method: "GET", ResourceType: "Observation", ClientID: tt.client,
			Query: url.Values{"code": {"4548-4"}, "_count": {"2"}}})
		if ok != tt.want || reason == "" {
			t.Errorf("%s: allowed=%v (%s), want %v", tt.client, ok, reason, tt.want)
		}
	}
	doc, _ := q.JSON()
	var m map[string]any
	json.Unmarshal(doc, &m)
	if m["resourceType"] != "AccessPolicy" || m["id"] != "client-confidential-symmetric-allow" || m["engine"] != "allow" {
		t.Fatalf("JSON = %s", doc)
	}
}

func TestDefaultDeny(t *testing.T) {
	e := NewEngine(nil, quiet())
	ok, reason := e.Allow(Request{Method: "GET", ResourceType: "Patient", ClientID: "c1"})
	if ok || reason != "no AccessPolicy applies to this client" {
		t.Fatalf("no policies: %v %q", ok, reason)
	}
	e.Replace([]*Policy{mustParse(t, `{"id":"p","engine":"matcho","matcho":{"request-method":"get"}}`)})
	ok, reason = e.Allow(Request{Method: "DELETE", ResourceType: "Patient", ID: "1", ClientID: "c1"})
	if ok || reason != "no AccessPolicy allows this request" {
		t.Fatalf("no matching policy: %v %q", ok, reason)
	}
}

func TestGlobalPolicy(t *testing.T) {
	e := NewEngine([]*Policy{mustParse(t, `{"id":"everyone-reads","engine":"matcho","matcho":{"request-method":"get"}}`)}, quiet())
	ok, reason := e.Allow(Request{Method: "GET", ResourceType: "Patient", ClientID: "anyone"})
	if !ok || reason != "AccessPolicy everyone-reads (matcho) allows" {
		t.Fatalf("%v %q", ok, reason)
	}
}

func TestMatcho(t *testing.T) {
	read := Request{Method: "GET", ResourceType: "Patient", ID: "p1", ClientID: "c1"}
	search := Request{Method: "GET", ResourceType: "Observation", ClientID: "c1",
		Query: url.Values{"category": {"laboratory"}, "code": {"a", "b"}}}
	export := Request{Method: "GET", ResourceType: "Group", ID: "g1", Operation: "$export", ClientID: "c1",
		Query: url.Values{"_type": {"Patient,Coverage"}}}
	create := Request{Method: "POST", ResourceType: "Observation", ClientID: "c1"}
	tests := []struct {
		name    string
		pattern string
		req     Request
		want    bool
	}{
		{"method", `{"request-method": "get"}`, read, true},
		{"method differs", `{"request-method": "get"}`, create, false},
		{"resource type param", `{"params": {"resource/type": "Patient"}}`, read, true},
		{"resource type differs", `{"params": {"resource/type": "Patient"}}`, search, false},
		{"id", `{"params": {"resource/id": "p1"}}`, read, true},
		{"client id", `{"client": {"id": "c1"}}`, read, true},
		{"client id differs", `{"client": {"id": "c2"}}`, read, false},
		{"uri regex", `{"uri": "#^/fhir/Patient/[^/]+$"}`, read, true},
		{"uri regex unanchored", `{"uri": "#Patient"}`, read, true},
		{"uri regex no match", `{"uri": "#^/fhir/Observation"}`, read, false},
		{"operation", `{"operation": "$export", "params": {"resource/type": "Group"}}`, export, true},
		{"operation absent", `{"operation": "$export"}`, read, false},
		{"no operation", `{"operation": "nil?"}`, read, true},
		{"operation present", `{"operation": "present?"}`, export, true},
		{"query value", `{"params": {"category": "laboratory"}}`, search, true},
		{"query value differs", `{"params": {"category": "vital-signs"}}`, search, false},
		{"query param absent", `{"params": {"category": "present?"}}`, read, false},
		{"query param must be absent", `{"params": {"_elements": "nil?"}}`, search, true},
		{"repeated query param element-wise", `{"params": {"code": ["a", "b"]}}`, search, true},
		{"repeated query param prefix", `{"params": {"code": ["a"]}}`, search, true},
		{"repeated query param order", `{"params": {"code": ["b"]}}`, search, false},
		{"string pattern against repeated param", `{"params": {"code": "a"}}`, search, false},
		{"$contains", `{"params": {"code": {"$contains": "b"}}}`, search, true},
		{"$contains miss", `{"params": {"code": {"$contains": "z"}}}`, search, false},
		{"$enum", `{"request-method": {"$enum": ["get", "head"]}}`, read, true},
		{"$enum miss", `{"request-method": {"$enum": ["put", "delete"]}}`, read, false},
		{"$one-of", `{"params": {"resource/type": {"$one-of": ["#^Pat", "Observation"]}}}`, search, true},
		{"$not", `{"request-method": {"$not": "delete"}}`, read, true},
		{"$not hit", `{"request-method": {"$not": "get"}}`, read, false},
		{"not-blank", `{"params": {"resource/id": "not-blank?"}}`, read, true},
		{"not-blank on missing", `{"params": {"resource/id": "not-blank?"}}`, create, false},
		{"_type regex for export", `{"operation": "$export", "params": {"_type": "#^(Patient|Coverage|,)+$"}}`, export, true},
		{"object pattern against a string", `{"request-method": {"x": "y"}}`, read, false},
		{"number pattern never equals a string", `{"params": {"resource/id": 1}}`, Request{Method: "GET", ResourceType: "Patient", ID: "1", ClientID: "c1"}, false},
		{"string pattern equals the id", `{"params": {"resource/id": "1"}}`, Request{Method: "GET", ResourceType: "Patient", ID: "1", ClientID: "c1"}, true},
		{"bool pattern", `{"params": {"resource/id": true}}`, read, false},
		{"null pattern", `{"params": {"_count": null}}`, read, true},
		{"array pattern against a string", `{"request-method": ["get"]}`, read, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustParse(t, `{"id":"p","engine":"matcho","link":[{"resourceType":"Client","id":"c1"}],"matcho":`+tt.pattern+`}`)
			e := NewEngine([]*Policy{p}, quiet())
			if ok, reason := e.Allow(tt.req); ok != tt.want {
				t.Fatalf("allowed = %v (%s), want %v", ok, reason, tt.want)
			}
		})
	}
}

func TestComplex(t *testing.T) {
	and := mustParse(t, `{"id":"and","engine":"complex","and":[
		{"engine":"matcho","matcho":{"request-method":"get"}},
		{"engine":"complex","or":[
			{"engine":"matcho","matcho":{"params":{"resource/type":"Patient"}}},
			{"engine":"matcho","matcho":{"operation":"$export"}}]}]}`)
	e := NewEngine([]*Policy{and}, quiet())
	for _, tt := range []struct {
		req  Request
		want bool
	}{
		{Request{Method: "GET", ResourceType: "Patient"}, true},
		{Request{Method: "GET", Operation: "$export"}, true},
		{Request{Method: "GET", ResourceType: "Observation"}, false},
		{Request{Method: "PUT", ResourceType: "Patient", ID: "1"}, false},
	} {
		if ok, _ := e.Allow(tt.req); ok != tt.want {
			t.Errorf("%+v: %v, want %v", tt.req, ok, tt.want)
		}
	}
	or := mustParse(t, `{"id":"or","engine":"complex","or":[{"engine":"allow"}]}`)
	if ok, _ := NewEngine([]*Policy{or}, quiet()).Allow(Request{Method: "DELETE"}); !ok {
		t.Error("or with allow denied")
	}
}

func TestParseRefusals(t *testing.T) {
	tests := []struct {
		name, body string
		status     int
		expr, msg  string
	}{
		{"not JSON", `{`, 400, "", "one JSON object"},
		{"array", `[]`, 400, "", "one JSON object"},
		{"resourceType", `{"resourceType":"Client","engine":"allow"}`, 422, "resourceType", "AccessPolicy"},
		{"id", `{"id":"a b","engine":"allow"}`, 422, "id", "valid FHIR id"},
		{"description", `{"description":1,"engine":"allow"}`, 422, "description", "string"},
		{"engine missing", `{}`, 422, "engine", "engine is required"},
		{"engine not a string", `{"engine":1}`, 422, "engine", "engine is required"},
		{"engine sql", `{"engine":"sql","sql":{"query":"select true"}}`, 422, "engine", `"sql" is not supported`},
		{"engine json-schema", `{"engine":"json-schema","schema":{}}`, 422, "engine", "not supported"},
		{"engine unknown", `{"engine":"magic"}`, 422, "engine", "unknown engine"},
		{"allow with matcho", `{"engine":"allow","matcho":{"request-method":"get"}}`, 422, "matcho", `belongs to engine "matcho"`},
		{"matcho with and", `{"engine":"matcho","matcho":{},"and":[]}`, 422, "and", `belongs to engine "complex"`},
		{"matcho missing", `{"engine":"matcho"}`, 422, "matcho", "needs a \"matcho\" object"},
		{"matcho not an object", `{"engine":"matcho","matcho":"get"}`, 422, "matcho", "needs a \"matcho\" object"},
		{"bad regex", `{"engine":"matcho","matcho":{"uri":"#("}}`, 422, "matcho.uri", "bad regular expression"},
		{"unsupported operator", `{"engine":"matcho","matcho":{"params":{"$every":"x"}}}`, 422, "matcho.params.$every", "not supported"},
		{"operator with other keys", `{"engine":"matcho","matcho":{"params":{"$not":"x","a":"b"}}}`, 422, "matcho.params", "only key"},
		{"empty $enum", `{"engine":"matcho","matcho":{"uri":{"$enum":[]}}}`, 422, "matcho.uri.$enum", "non-empty"},
		{"$one-of not an array", `{"engine":"matcho","matcho":{"uri":{"$one-of":"x"}}}`, 422, "matcho.uri.$one-of", "non-empty"},
		{"path reference", `{"engine":"matcho","matcho":{"client":{"id":".user.id"}}}`, 422, "matcho.client.id", "path references"},
		{"nested bad regex in array", `{"engine":"matcho","matcho":{"x":["a","#["]}}`, 422, "matcho.x[1]", "bad regular expression"},
		{"complex without and/or", `{"engine":"complex"}`, 422, "engine", "exactly one"},
		{"complex with both", `{"engine":"complex","and":[{"engine":"allow"}],"or":[{"engine":"allow"}]}`, 422, "engine", "exactly one"},
		{"complex empty", `{"engine":"complex","and":[]}`, 422, "and", "non-empty"},
		{"complex rule not an object", `{"engine":"complex","or":[1]}`, 422, "or[0]", "must be an object"},
		{"complex nested error", `{"engine":"complex","or":[{"engine":"allow"},{"engine":"matcho","matcho":{"uri":"#("}}]}`, 422, "or[1].matcho.uri", "bad regular expression"},
		{"complex nested engine", `{"engine":"complex","and":[{"engine":"sql"}]}`, 422, "and[0].engine", "not supported"},
		{"link not an array", `{"engine":"allow","link":{"id":"c"}}`, 422, "link", "array"},
		{"link not an object", `{"engine":"allow","link":["c"]}`, 422, "link[0]", "object"},
		{"link to User", `{"engine":"allow","link":[{"resourceType":"User","id":"u"}]}`, 422, "link[0].resourceType", "only links to Client"},
		{"link without id", `{"engine":"allow","link":[{"resourceType":"Client"}]}`, 422, "link[0].id", "needs the id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.body))
			fe := fhir.AsError(err)
			if fe == nil {
				t.Fatalf("error %v is not a *fhir.Error", err)
			}
			if fe.Status != tt.status || !strings.Contains(fe.Diagnostics, tt.msg) {
				t.Fatalf("error = %d %q, want %d mentioning %q", fe.Status, fe.Diagnostics, tt.status, tt.msg)
			}
			if tt.expr != "" && !slices.Equal(fe.Expression, []string{tt.expr}) {
				t.Fatalf("expression = %v, want %q", fe.Expression, tt.expr)
			}
		})
	}
	if _, err := ParseFor("p", []byte(`{"id":"q","engine":"allow"}`)); fhir.AsError(err) == nil || fhir.AsError(err).Expression[0] != "id" {
		t.Fatalf("id mismatch: %v", err)
	}
}

func TestReplaceDropsCachedDecisions(t *testing.T) {
	allow := mustParse(t, `{"id":"a","engine":"allow","link":[{"resourceType":"Client","id":"c1"}]}`)
	e := NewEngine([]*Policy{allow}, quiet())
	req := Request{Method: "GET", ResourceType: "Patient", ClientID: "c1"}
	if ok, _ := e.Allow(req); !ok {
		t.Fatal("not allowed")
	}
	if e.snap.Load().cache.len() != 1 {
		t.Fatal("decision not cached")
	}
	e.Replace(nil)
	if ok, _ := e.Allow(req); ok {
		t.Fatal("cached allow survived the policy change")
	}
}

func TestDecisionCacheBounded(t *testing.T) {
	e := NewEngine([]*Policy{mustParse(t, `{"id":"a","engine":"allow"}`)}, quiet(), WithCacheSize(50))
	for i := 0; i < 500; i++ {
		e.Allow(Request{Method: "GET", ResourceType: "Patient", ID: fmt.Sprint(i), ClientID: "c"})
	}
	if n := e.snap.Load().cache.len(); n > 50 {
		t.Fatalf("cache holds %d decisions, max 50", n)
	}
	off := NewEngine([]*Policy{mustParse(t, `{"id":"a","engine":"allow"}`)}, quiet(), WithCacheSize(0))
	if ok, _ := off.Allow(Request{ClientID: "c"}); !ok {
		t.Fatal("cacheless engine denies")
	}
}

func TestConcurrentReplace(t *testing.T) {
	allow := mustParse(t, `{"id":"a","engine":"allow"}`)
	e := NewEngine(nil, quiet())
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for j := 0; j < 500; j++ {
				e.Allow(Request{Method: "GET", ResourceType: "Patient", ID: fmt.Sprint(j % 7), ClientID: "c"})
			}
		}()
		go func() {
			defer wg.Done()
			for j := 0; j < 200; j++ {
				if j%2 == 0 {
					e.Replace([]*Policy{allow})
				} else {
					e.Replace(nil)
				}
			}
		}()
	}
	wg.Wait()
}

func TestAuditLine(t *testing.T) {
	var buf bytes.Buffer
	e := NewEngine([]*Policy{mustParse(t, `{"id":"a","engine":"allow","link":[{"resourceType":"Client","id":"c1"}]}`)},
		WithLogger(slog.New(slog.NewJSONHandler(&buf, nil))))
	for i := 0; i < 2; i++ { // the second decision comes from the cache and is logged too
		e.Allow(Request{Method: "GET", ResourceType: "Patient", ClientID: "c1", TokenID: fmt.Sprintf("jti-%d", i), Query: url.Values{"name": {"Smith"}, "birthdate": {"1970-01-01"}}})
	}
	e.Allow(Request{Method: "DELETE", ResourceType: "Patient", ID: "p9", ClientID: "c2"})
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d audit lines, want 3", len(lines))
	}
	if strings.Contains(buf.String(), "Smith") || strings.Contains(buf.String(), "1970") {
		t.Fatal("query values (possible patient data) in the audit log")
	}
	var first, last map[string]any
	json.Unmarshal([]byte(lines[0]), &first)
	json.Unmarshal([]byte(lines[2]), &last)
	var second map[string]any
	json.Unmarshal([]byte(lines[1]), &second)
	if first["jti"] != "jti-0" || second["jti"] != "jti-1" {
		t.Fatalf("jti of the token behind each decision, also a cached one: %s / %s", lines[0], lines[1])
	}
	if first["decision"] != "allow" || first["client_id"] != "c1" || first["query_params"] != "birthdate,name" ||
		first["reason"] != "AccessPolicy a (allow) allows" || first["audit"] != "access" {
		t.Fatalf("allow line = %s", lines[0])
	}
	if last["decision"] != "deny" || last["client_id"] != "c2" || last["id"] != "p9" || last["method"] != "DELETE" {
		t.Fatalf("deny line = %s", lines[2])
	}
}

func BenchmarkAllow(b *testing.B) {
	p := mustParse(b, `{"id":"bulk","engine":"matcho","link":[{"resourceType":"Client","id":"c1"}],
		"matcho":{"request-method":{"$enum":["get","head"]},"params":{"resource/type":{"$one-of":["Patient","Observation","#^Coverage$"]}}}}`)
	e := NewEngine([]*Policy{p}, WithLogger(slog.New(slog.NewJSONHandler(io.Discard, nil))))
	req := Request{Method: "GET", ResourceType: "Observation", ClientID: "c1", Query: url.Values{"code": {"4548-4"}}}
	b.Run("cached", func(b *testing.B) {
		for b.Loop() {
			e.Allow(req)
		}
	})
	b.Run("uncached", func(b *testing.B) {
		e := NewEngine([]*Policy{p}, WithLogger(slog.New(slog.NewJSONHandler(io.Discard, nil))), WithCacheSize(0))
		for b.Loop() {
			e.Allow(req)
		}
	})
}
