package seed

import (
	"encoding/json"
	"testing"
	"time"
)

func TestAppendQuotedMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", `quote " and \ backslash`, "new\nline\ttab\r", "\x01\x1f", "Emergency Room – Hospital", "bad \xff byte", "日本"} {
		got := appendQuoted(nil, s)
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("%q: invalid JSON %s: %v", s, got, err)
		}
		want, _ := json.Marshal(s)
		var wantBack string
		_ = json.Unmarshal(want, &wantBack)
		if back != wantBack {
			t.Errorf("%q: round trip %q, want %q", s, back, wantBack)
		}
	}
}

func TestAppendFixed(t *testing.T) {
	for _, tc := range []struct {
		v    int64
		dec  int
		want string
	}{{0, 2, "0.00"}, {5, 2, "0.05"}, {12345, 2, "123.45"}, {-705, 1, "-70.5"}, {42, 0, "42"}, {100, 1, "10.0"}} {
		if got := string(appendFixed(nil, tc.v, tc.dec)); got != tc.want {
			t.Errorf("appendFixed(%d, %d) = %s, want %s", tc.v, tc.dec, got, tc.want)
		}
	}
}

func TestAppendDateTime(t *testing.T) {
	unix := time.Date(2024, 2, 29, 3, 4, 5, 0, time.UTC).Unix()
	for _, tc := range []struct {
		off  int
		want string
	}{{0, "2024-02-29T03:04:05Z"}, {-300, "2024-02-28T22:04:05-05:00"}, {330, "2024-02-29T08:34:05+05:30"}} {
		got := string(appendDateTime(nil, unix, tc.off))
		if got != tc.want {
			t.Errorf("offset %d: %s, want %s", tc.off, got, tc.want)
		}
		if parsed, err := time.Parse(time.RFC3339, got); err != nil || parsed.Unix() != unix {
			t.Errorf("%s does not name the same instant: %v %v", got, parsed, err)
		}
	}
}

func TestWriterProducesValidJSON(t *testing.T) {
	var w jw
	w.obj()
	w.kstr("a", "x")
	w.karr("b")
	w.str("1")
	w.obj()
	w.kint("n", -3)
	w.endObj()
	w.concept(code{"s", "c", "d"})
	w.endArr()
	w.kobj("c")
	w.endObj()
	w.kbool("d", false)
	w.endObj()
	want := `{"a":"x","b":["1",{"n":-3},{"coding":[{"system":"s","code":"c","display":"d"}],"text":"d"}],"c":{},"d":false}`
	if string(w.b) != want {
		t.Fatalf("got  %s\nwant %s", w.b, want)
	}
}
