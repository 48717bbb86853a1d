package smart

import (
	"errors"
	"reflect"
	"testing"
)

func TestParseScopeValid(t *testing.T) {
	lab := Query{{Name: "category", Value: "http://terminology.hl7.org/CodeSystem/observation-category|laboratory"}}
	tests := []struct {
		in     string
		want   Scope
		render string
	}{
		{"system/*.read", Scope{Context: ContextSystem, ResourceType: "*", Permissions: PermV1Read, V1: true}, "system/*.read"},
		{"system/Patient.read", Scope{Context: ContextSystem, ResourceType: "Patient", Permissions: PermRead | PermSearch, V1: true}, "system/Patient.read"},
		{"system/*.write", Scope{Context: ContextSystem, ResourceType: "*", Permissions: PermV1Write, V1: true}, "system/*.write"},
		{"system/*.*", Scope{Context: ContextSystem, ResourceType: "*", Permissions: PermAll, V1: true}, "system/*.*"},
		{"system/Patient.rs", Scope{Context: ContextSystem, ResourceType: "Patient", Permissions: PermRead | PermSearch}, "system/Patient.rs"},
		{"system/*.cruds", Scope{Context: ContextSystem, ResourceType: "*", Permissions: PermAll}, "system/*.cruds"},
		{"system/Observation.c", Scope{Context: ContextSystem, ResourceType: "Observation", Permissions: PermCreate}, "system/Observation.c"},
		{"system/Observation.ud", Scope{Context: ContextSystem, ResourceType: "Observation", Permissions: PermUpdate | PermDelete}, "system/Observation.ud"},
		{"patient/Observation.rs", Scope{Context: ContextPatient, ResourceType: "Observation", Permissions: PermRead | PermSearch}, "patient/Observation.rs"},
		{"user/*.read", Scope{Context: ContextUser, ResourceType: "*", Permissions: PermV1Read, V1: true}, "user/*.read"},
		{"system/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory",
			Scope{Context: ContextSystem, ResourceType: "Observation", Permissions: PermRead | PermSearch, Query: lab},
			"system/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory"},
		{"system/Observation.rs?status=final&category=vital-signs",
			Scope{Context: ContextSystem, ResourceType: "Observation", Permissions: PermRead | PermSearch,
				Query: Query{{"category", "vital-signs"}, {"status", "final"}}},
			"system/Observation.rs?category=vital-signs&status=final"},
		{"system/Observation.rs?code=a%26b", Scope{Context: ContextSystem, ResourceType: "Observation",
			Permissions: PermRead | PermSearch, Query: Query{{"code", "a&b"}}}, "system/Observation.rs?code=a%26b"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseScope(tt.in)
			if err != nil {
				t.Fatalf("ParseScope: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			if s := got.String(); s != tt.render {
				t.Fatalf("String() = %q, want %q", s, tt.render)
			}
		})
	}
}

func TestParseScopeInvalid(t *testing.T) {
	tests := []struct {
		in   string
		want error
	}{
		{"", ErrScopeMalformed},
		{"system", ErrScopeMalformed},
		{"system/", ErrScopeMalformed},
		{"system/Patient", ErrScopeMalformed},
		{"system/Patient.", ErrScopeMalformed},
		{"system/.rs", ErrScopeMalformed},
		{"admin/Patient.rs", ErrScopeMalformed},
		{"System/Patient.rs", ErrScopeMalformed},
		{"system/Patient.rs\t", ErrScopeMalformed},
		{`system/Patient.r"s`, ErrScopeMalformed},
		{"system/Patient.rs?", ErrScopeMalformed},
		{"system/Patient.rs?name", ErrScopeMalformed},
		{"system/Patient.rs?name=", ErrScopeMalformed},
		{"system/Patient.rs?=x", ErrScopeMalformed},
		{"system/Patient.rs?a=%zz", ErrScopeMalformed},
		{"system/Patient.rs?a=1&", ErrScopeMalformed},
		{"system/Observation.read?category=laboratory", ErrScopeMalformed},
		{"system/Patients.read", ErrScopeUnknownType},
		{"system/patient.read", ErrScopeUnknownType},
		{"system/Resource.read", ErrScopeUnknownType},
		{"system/Patient.dus", ErrScopeUnknownPermission},
		{"system/Patient.sr", ErrScopeUnknownPermission},
		{"system/Patient.rr", ErrScopeUnknownPermission},
		{"system/Patient.x", ErrScopeUnknownPermission},
		{"system/Patient.Read", ErrScopeUnknownPermission},
		{"system/Patient.**", ErrScopeUnknownPermission},
		{"launch", ErrScopeNotResource},
		{"launch/patient", ErrScopeNotResource},
		{"openid", ErrScopeNotResource},
		{"fhirUser", ErrScopeNotResource},
		{"offline_access", ErrScopeNotResource},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := ParseScope(tt.in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("ParseScope(%q) error = %v, want %v", tt.in, err, tt.want)
			}
			var se *ScopeError
			if !errors.As(err, &se) || se.Reason == "" {
				t.Fatalf("error %v is not a *ScopeError with a reason", err)
			}
		})
	}
}

func TestParsePermissionOrder(t *testing.T) {
	for _, ok := range []string{"c", "r", "u", "d", "s", "cr", "rs", "cud", "cruds", "crs"} {
		p, err := ParsePermission(ok)
		if err != nil || p.String() != ok {
			t.Errorf("ParsePermission(%q) = %v, %v", ok, p, err)
		}
	}
	for _, bad := range []string{"", "sc", "rc", "crudss", "read", "a"} {
		if _, err := ParsePermission(bad); err == nil {
			t.Errorf("ParsePermission(%q) succeeded", bad)
		}
	}
}

func TestParseScopes(t *testing.T) {
	ss, err := ParseScopes("  system/Patient.rs system/Patient.rs  system/Observation.read ")
	if err != nil {
		t.Fatal(err)
	}
	if got := ss.String(); got != "system/Patient.rs system/Observation.read" {
		t.Fatalf("got %q", got)
	}
	if ss, err := ParseScopes(""); err != nil || len(ss) != 0 {
		t.Fatalf("empty: %v %v", ss, err)
	}
	if _, err := ParseScopes("system/Patient.rs launch"); !errors.Is(err, ErrScopeNotResource) {
		t.Fatalf("launch accepted: %v", err)
	}
}

func mustScopes(t *testing.T, s string) Scopes {
	t.Helper()
	ss, err := ParseScopes(s)
	if err != nil {
		t.Fatalf("ParseScopes(%q): %v", s, err)
	}
	return ss
}

func TestIntersect(t *testing.T) {
	tests := []struct {
		name, req, ceiling, want string
	}{
		{"same v1", "system/*.read", "system/*.read", "system/*.read"},
		{"v1 request answered in v1", "system/*.*", "system/*.rs", "system/*.read"},
		{"v1 write cut to nothing leaves read", "system/*.read system/*.write", "system/*.rs", "system/*.read"},
		{"type within wildcard ceiling", "system/Patient.read", "system/*.read", "system/Patient.read"},
		{"wildcard request narrowed to ceiling types", "system/*.rs", "system/Patient.rs system/Observation.r",
			"system/Patient.rs system/Observation.r"},
		{"v1 without v1 spelling falls back to v2", "system/*.read", "system/Patient.r", "system/Patient.r"},
		{"permissions cut", "system/*.cruds", "system/*.rs", "system/*.rs"},
		{"no overlap", "system/Patient.rs", "system/Observation.rs", ""},
		{"no common permission", "system/Patient.c", "system/Patient.rs", ""},
		{"context differs", "system/Patient.rs", "user/Patient.rs", ""},
		{"ceiling restriction carried over", "system/Observation.rs", "system/Observation.rs?category=laboratory",
			"system/Observation.rs?category=laboratory"},
		{"restrictions combine", "system/Observation.rs?status=final", "system/*.rs?category=laboratory",
			"system/Observation.rs?category=laboratory&status=final"},
		{"subsumed scope dropped", "system/*.rs system/Patient.r", "system/*.cruds", "system/*.rs"},
		{"merged permissions", "system/Patient.r system/Patient.s", "system/*.rs", "system/Patient.rs"},
		{"restricted dropped when unrestricted granted", "system/Observation.rs?category=lab system/Observation.rs",
			"system/*.rs", "system/Observation.rs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mustScopes(t, tt.req).Intersect(mustScopes(t, tt.ceiling)).String()
			if got != tt.want {
				t.Fatalf("Intersect = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestGrant(t *testing.T) {
	ceiling := mustScopes(t, "system/*.read")
	tests := []struct {
		name, req string
		want      string
		err       error
	}{
		{"granted", "system/Patient.rs system/Observation.read", "system/Patient.rs system/Observation.read", nil},
		{"partly granted", "system/Patient.cruds", "system/Patient.rs", nil},
		{"empty", "", "", ErrScopeEmpty},
		{"only spaces", "   ", "", ErrScopeEmpty},
		{"malformed", "system/Patient", "", ErrScopeMalformed},
		{"unknown type", "system/Foo.rs", "", ErrScopeUnknownType},
		{"unknown permission", "system/Patient.x", "", ErrScopeUnknownPermission},
		{"user scope", "user/Patient.rs", "", ErrScopeContext},
		{"patient scope", "system/Patient.rs patient/Patient.rs", "", ErrScopeContext},
		{"launch scope", "launch", "", ErrScopeNotResource},
		{"nothing within ceiling", "system/Patient.cud", "", ErrScopeNotGranted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Grant(tt.req, ceiling)
			if !errors.Is(err, tt.err) {
				t.Fatalf("Grant error = %v, want %v", err, tt.err)
			}
			if got.String() != tt.want {
				t.Fatalf("Grant = %q, want %q", got.String(), tt.want)
			}
		})
	}
}

func TestAccess(t *testing.T) {
	ss := mustScopes(t, "system/Patient.rs system/Observation.rs?category=laboratory system/Observation.s?category=vital-signs system/*.c")
	tests := []struct {
		typ         string
		perm        Permission
		allowed     bool
		filterCount int
	}{
		{"Patient", PermRead, true, 0},
		{"Patient", PermSearch, true, 0},
		{"Patient", PermRead | PermSearch, true, 0},
		{"Patient", PermUpdate, false, 0},
		{"Patient", PermCreate, true, 0},
		{"Encounter", PermCreate, true, 0},
		{"Encounter", PermRead, false, 0},
		{"Observation", PermRead, true, 1},
		{"Observation", PermSearch, true, 2},
		{"Observation", PermRead | PermSearch, true, 2},
		{"Observation", PermDelete, false, 0},
		{"Observation", 0, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.typ+"."+tt.perm.String(), func(t *testing.T) {
			a := ss.Access(tt.typ, tt.perm)
			if a.Allowed != tt.allowed || len(a.Filters) != tt.filterCount {
				t.Fatalf("Access = %+v, want allowed=%v filters=%d", a, tt.allowed, tt.filterCount)
			}
			if ss.Allows(tt.typ, tt.perm) != tt.allowed {
				t.Fatalf("Allows disagrees with Access")
			}
		})
	}
	a := ss.Access("Observation", PermRead|PermSearch)
	got := []string{a.Filters[0].String(), a.Filters[1].String()}
	want := []string{"category=laboratory", "category=laboratory&category=vital-signs"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("filters = %v, want %v", got, want)
	}
	if v := a.Filters[0].Values().Get("category"); v != "laboratory" {
		t.Fatalf("Values = %q", v)
	}
}

func TestV1Semantics(t *testing.T) {
	read := mustScopes(t, "system/*.read")
	write := mustScopes(t, "system/*.write")
	for _, tt := range []struct {
		ss   Scopes
		i    Interaction
		want bool
	}{
		{read, InteractionRead, true}, {read, InteractionVRead, true}, {read, InteractionHistoryInstance, true},
		{read, InteractionSearchType, true}, {read, InteractionSearchSystem, true}, {read, InteractionHistoryType, true},
		{read, InteractionCreate, false}, {read, InteractionUpdate, false}, {read, InteractionDelete, false},
		{write, InteractionCreate, true}, {write, InteractionUpdate, true}, {write, InteractionPatch, true},
		{write, InteractionDelete, true}, {write, InteractionRead, false}, {write, InteractionSearchType, false},
		{read, Interaction("operation"), false},
	} {
		if got := tt.ss.AllowsInteraction("Observation", tt.i); got != tt.want {
			t.Errorf("%s allows %s = %v, want %v", tt.ss, tt.i, got, tt.want)
		}
	}
}

func TestInteractionPermissions(t *testing.T) {
	want := map[Interaction]Permission{
		InteractionRead: PermRead, InteractionVRead: PermRead, InteractionHistoryInstance: PermRead,
		InteractionHistoryType: PermSearch, InteractionHistorySystem: PermSearch,
		InteractionSearchType: PermSearch, InteractionSearchSystem: PermSearch,
		InteractionCreate: PermCreate, InteractionUpdate: PermUpdate, InteractionPatch: PermUpdate,
		InteractionDelete: PermDelete,
	}
	for i, p := range want {
		got, ok := i.Permission()
		if !ok || got != p {
			t.Errorf("%s: got %v %v, want %v", i, got, ok, p)
		}
	}
	ss := mustScopes(t, "system/Observation.rs?category=laboratory")
	if a := ss.AccessFor("Observation", InteractionSearchType); !a.Allowed || len(a.Filters) != 1 {
		t.Fatalf("AccessFor search = %+v", a)
	}
	if a := ss.AccessFor("Observation", Interaction("bogus")); a.Allowed {
		t.Fatal("unknown interaction allowed")
	}
}

func TestTypesAllowed(t *testing.T) {
	ss := mustScopes(t, "system/Patient.rs system/Observation.r system/Encounter.s")
	wild, types := ss.TypesAllowed(PermSearch)
	if wild || !reflect.DeepEqual(types, []string{"Patient", "Encounter"}) {
		t.Fatalf("got %v %v", wild, types)
	}
	wild, _ = mustScopes(t, "system/*.read").TypesAllowed(PermRead)
	if !wild {
		t.Fatal("wildcard not reported")
	}
}
