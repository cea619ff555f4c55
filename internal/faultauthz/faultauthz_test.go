package faultauthz

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

func start(t *testing.T, opt Options) *Server {
	t.Helper()
	s, err := Start(opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// post sends an event whose "token" header is tok to path, without following redirects.
func post(t *testing.T, s *Server, path, tok string) (*http.Response, []byte, error) {
	t.Helper()
	c := &http.Client{
		Transport:     &http.Transport{DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       5 * time.Second,
	}
	resp, err := c.Post(s.URL+path, "application/json", strings.NewReader(`{"httpMethod":"GET","headers":{"token":"`+tok+`"}}`))
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

func TestModes(t *testing.T) {
	s := start(t, Options{HangFor: 100 * time.Millisecond, DripEvery: time.Millisecond, HugeBytes: 256 << 10})
	tests := []struct {
		tok, path string
		status    int    // 0: the exchange fails
		body      string // exact body, when set
		check     func(*http.Response, []byte, error) string
	}{
		{tok: "allow", path: "/a/apig", status: 200, body: `{"status":"allow","context":{"user":"fault-user","mode":"allow"}}`},
		{tok: "allow.1", path: "/a/tencent", status: 200, body: `{"api-auth":true}`},
		{tok: "deny", path: "/a/mpaas", status: 200, body: `{"success":false}`},
		{tok: "", path: "/a/apig", status: 200, body: `{"status":"deny"}`},              // default mode
		{tok: "nonsense", path: "/a/apig", status: 200, body: `{"status":"deny"}`},      // default mode
		{tok: "timeout.7", path: "/a/apig", status: 200, body: string(allowBody(apig))}, // after HangFor
		{tok: "5xx", path: "/a/apig", status: 500, body: string(allowBody(apig))},
		{tok: "5xx", path: "/a/apig", status: 502},
		{tok: "5xx", path: "/a/apig", status: 503},
		{tok: "5xx", path: "/a/apig", status: 504},
		{tok: "drip", path: "/a/tencent", status: 200, body: strings.Repeat(" ", dripPad) + `{"api-auth":true}`},
		{tok: "huge", path: "/a/apig", status: 200, check: func(r *http.Response, b []byte, _ error) string {
			if r.ContentLength != 256<<10 || len(b) != 256<<10 || !strings.HasPrefix(string(b), `{"status":"allow"`) {
				return "not a declared 256 KiB allow"
			}
			return ""
		}},
		{tok: "huge", path: "/a/apig", status: 200, check: func(r *http.Response, b []byte, _ error) string {
			if r.ContentLength != -1 || len(b) != 256<<10 || !strings.HasSuffix(string(b), `"}`) {
				return "not a chunked 256 KiB allow"
			}
			return ""
		}},
		{tok: "redirect", path: "/a/apig", status: 301, check: func(r *http.Response, _ []byte, _ error) string {
			if r.Header.Get("Location") != "/followed/a/apig" {
				return "Location " + r.Header.Get("Location")
			}
			return ""
		}},
		{tok: "malformed", path: "/a/apig", status: 200, body: `{"status":"allow","context":{"user":"fault-user","mode":"allow"}`},
		{tok: "contradictory", path: "/a/tencent", status: 200, body: `{"api-auth":true,"api-auth":false}`},
		{tok: "reset", path: "/a/apig", check: func(_ *http.Response, _ []byte, err error) string {
			if !errors.Is(err, syscall.ECONNRESET) {
				return "want a connection reset"
			}
			return ""
		}},
		{tok: "garbage", path: "/a/apig", check: func(_ *http.Response, _ []byte, err error) string {
			if err == nil || !strings.Contains(err.Error(), "malformed HTTP") {
				return "want a malformed HTTP response"
			}
			return ""
		}},
	}
	for _, tt := range tests {
		resp, b, err := post(t, s, tt.path, tt.tok)
		switch {
		case tt.status == 0 && err == nil:
			t.Errorf("%s: got HTTP %d, want a failed exchange", tt.tok, resp.StatusCode)
		case tt.status != 0 && err != nil:
			t.Errorf("%s: %v", tt.tok, err)
		case tt.status != 0 && resp.StatusCode != tt.status:
			t.Errorf("%s: HTTP %d, want %d", tt.tok, resp.StatusCode, tt.status)
		case tt.body != "" && string(b) != tt.body:
			t.Errorf("%s: body %q, want %q", tt.tok, b, tt.body)
		}
		if tt.check != nil {
			if p := tt.check(resp, b, err); p != "" {
				t.Errorf("%s: %s (%v)", tt.tok, p, err)
			}
		}
	}
	if _, _, err := post(t, s, "/followed/a/apig", "deny"); err != nil || s.Followed() != 1 {
		t.Errorf("followed redirect: %v, Followed %d", err, s.Followed())
	}
	if got := s.Calls(Status5xx); got != 4 {
		t.Errorf("Calls(5xx) = %d, want 4", got)
	}
	if got := s.Counts()[Key{Path: "/a/apig", Mode: Deny}]; got != 2 {
		t.Errorf("default-mode denies counted %d, want 2", got)
	}
}

func TestFlipCyclesThroughFaults(t *testing.T) {
	s := start(t, Options{Default: Flip, HangFor: time.Millisecond, DripEvery: time.Microsecond, HugeBytes: 1 << 10})
	for range 2 * len(Faults) {
		_, _, _ = post(t, s, "/f/apig", "")
	}
	for _, m := range Faults {
		if got := s.Counts()[Key{Path: "/f/apig", Mode: m, Flip: true}]; got != 2 {
			t.Errorf("flip served %s %d times in two cycles, want 2", m, got)
		}
	}
	if got := s.Calls(Flip); got != int64(2*len(Faults)) {
		t.Errorf("Calls(Flip) = %d", got)
	}
	s.SetDefault(Allow)
	if _, b, _ := post(t, s, "/f/mpaas", ""); !strings.Contains(string(b), `"success":true`) {
		t.Errorf("after SetDefault(Allow): %q", b)
	}
}

// TestCloseEndsHangs: Close returns promptly while calls hang or drip.
func TestCloseEndsHangs(t *testing.T) {
	s := start(t, Options{})
	for _, tok := range []string{"timeout", "drip"} {
		go func() { _, _, _ = post(t, s, "/c/apig", tok) }()
	}
	for s.Total() < 2 {
		time.Sleep(5 * time.Millisecond)
	}
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return while calls were hanging")
	}
}

func TestModeOf(t *testing.T) {
	for in, want := range map[string]Mode{"timeout": Timeout, "huge.12": Huge, "flip.x.y": Flip, "5xx.shared": Status5xx} {
		if m, ok := ModeOf(in); !ok || m != want {
			t.Errorf("ModeOf(%q) = %q, %v", in, m, ok)
		}
	}
	for _, in := range []string{"", "Timeout", "huge12", ".allow"} {
		if _, ok := ModeOf(in); ok {
			t.Errorf("ModeOf(%q) names a mode", in)
		}
	}
	if _, err := Start(Options{Default: "nope"}); err == nil {
		t.Error("Start accepted an unknown default mode")
	}
}
