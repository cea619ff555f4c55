package authorizer

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	authv1alpha1 "github.com/portcullis-dev/portcullis/api/v1alpha1"
	"github.com/portcullis-dev/portcullis/authz/compile"
)

// oracleEvent is the request body of DESIGN.md §4 as a struct for encoding/json: the
// reference encodeEvent must match byte for byte.
type oracleEvent struct {
	HTTPMethod      string            `json:"httpMethod"`
	Path            string            `json:"path"`
	Headers         map[string]string `json:"headers"`
	Query           map[string]string `json:"queryStringParameters"`
	Cookies         map[string]string `json:"cookies"`
	UserData        string            `json:"user_data"`
	Body            *string           `json:"body,omitempty"`
	IsBase64Encoded bool              `json:"isBase64Encoded"`
	RequestContext  struct {
		RequestID          string            `json:"requestId"`
		SourceIP           string            `json:"sourceIp"`
		Binding            string            `json:"binding"`
		Credential         string            `json:"credential,omitempty"`
		CredentialMetadata map[string]string `json:"credentialMetadata,omitempty"`
	} `json:"requestContext"`
}

func oracleEncode(t testing.TB, c *Call) []byte {
	a := c.Authorizer
	ev := oracleEvent{
		HTTPMethod: c.Method, Path: c.Path, UserData: a.UserData,
		Headers: map[string]string{}, Query: map[string]string{}, Cookies: map[string]string{},
	}
	ev.RequestContext.RequestID = c.RequestID
	if c.Source.IsValid() {
		ev.RequestContext.SourceIP = c.Source.String()
	}
	ev.RequestContext.Binding = c.Binding.Ref
	for i, s := range a.IdentitySources {
		switch s.In {
		case authv1alpha1.IdentityHeader:
			ev.Headers[s.Name] = c.Identity[i]
		case authv1alpha1.IdentityQuery:
			ev.Query[s.Name] = c.Identity[i]
		case authv1alpha1.IdentityCookie:
			ev.Cookies[s.Name] = c.Identity[i]
		}
	}
	if a.SendBody {
		b := base64.StdEncoding.EncodeToString(c.Body)
		ev.Body, ev.IsBase64Encoded = &b, true
	}
	if cr := c.Credential; cr != nil {
		ev.RequestContext.Credential = cr.Ref
		if md := cr.Metadata(); len(md) > 0 {
			ev.RequestContext.CredentialMetadata = md
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(&ev); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// eventCall builds a call whose every string comes from s, split on "|": the method, path,
// user data, request ID, binding, credential, then name=value pairs, each a source (its
// location chosen by the first letter of the name: h, q, c; anything else is a method or
// path source) or, after a pair named "meta", a credential metadata entry.
func eventCall(s string, body []byte, sendBody bool, src netip.Addr) Call {
	f := strings.Split(s, "|")
	for len(f) < 6 {
		f = append(f, "")
	}
	a := &compile.Authorizer{UserData: f[2], SendBody: sendBody}
	c := Call{Authorizer: a, Method: f[0], Path: f[1], RequestID: f[3], Body: body, Source: src,
		Binding: &compile.Binding{ObjectRef: compile.ObjectRef{Ref: f[4]}}}
	var md map[string]string
	for _, kv := range f[6:] {
		name, value, _ := strings.Cut(kv, "=")
		if md != nil {
			md[name] = value
			continue
		}
		if name == "meta" {
			md = map[string]string{}
			continue
		}
		in := authv1alpha1.IdentityMethod
		if name != "" {
			switch name[0] {
			case 'h':
				in = authv1alpha1.IdentityHeader
			case 'q':
				in = authv1alpha1.IdentityQuery
			case 'c':
				in = authv1alpha1.IdentityCookie
			}
		}
		a.IdentitySources = append(a.IdentitySources, compile.IdentitySource{In: in, Name: name})
		c.Identity = append(c.Identity, value)
	}
	if f[5] != "" || md != nil {
		ns, name, _ := strings.Cut(f[5], "/")
		c.Credential = compile.NewCredential(&authv1alpha1.Credential{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec:       authv1alpha1.CredentialSpec{Metadata: md},
		}, "key", nil)
		c.Credential.Ref = f[5] // as the build sets it; empty tests the omitted member
	}
	return c
}

func TestEncodeEventMatchesEncodingJSON(t *testing.T) {
	tests := []struct {
		name     string
		s        string
		body     []byte
		sendBody bool
		src      netip.Addr
	}{
		{"the DESIGN example", "GET|/orders/7|user@123|req-1|shop/orders|shop/mobile-app|htoken=t-1|qtest=x|csid=s|meta|tier=gold", []byte("hello"), true, netip.MustParseAddr("203.0.113.9")},
		{"no sources, no credential, no source address", "POST|/|||shop/orders|", nil, false, netip.Addr{}},
		{"empty body sent", "POST|/a||r|b|", []byte{}, true, netip.MustParseAddr("::1")},
		{"IPv4 in IPv6 and a zone", "GET|/|||b|", nil, false, netip.MustParseAddr("fe80::1%eth\"0")},
		{"mapped address", "GET|/|||b|", nil, false, netip.MustParseAddr("::ffff:10.0.0.1")},
		{"sources sorted by name, the last of a name wins", "GET|/|||b||hz=1|ha=2|hz=3|hm=4|method=GET", nil, false, netip.Addr{}},
		{"escapes", "GE\"T|/p\\a\tt\nh\r\b\f\x00\x1f\x7f|<html>&amp;|\u2028\u2029|é字🙂|ns/n|h\"k=v\x01", nil, false, netip.Addr{}},
		{"invalid UTF-8", "GET|/\xff\xfe|\xc3|\xed\xa0\x80|b|", nil, false, netip.Addr{}},
		{"metadata without a credential ref", "GET|/|||b||meta|b=2|a=1|\u2028=x", nil, false, netip.Addr{}},
		{"many sources", "GET|/|||b||h1=a|h2=b|h3=c|h4=d|h5=e|h6=f|h7=g|h8=h|h9=i|q1=j|c1=k", nil, false, netip.Addr{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := eventCall(tt.s, tt.body, tt.sendBody, tt.src)
			got, want := encodeEvent(&c), oracleEncode(t, &c)
			if !bytes.Equal(got, want) {
				t.Errorf("encodeEvent\n got %q\nwant %q", got, want)
			}
		})
	}
}

func FuzzEncodeEvent(f *testing.F) {
	f.Add("GET|/orders/7|user@123|req-1|shop/orders|shop/mobile-app|htoken=t-1|qtest=x|csid=s|meta|tier=gold", []byte("hello"), true, []byte{203, 0, 113, 9})
	f.Add("GE\"T|/p\\a\tt\nh|<x>&|\u2028|é字|\xff|h\"k=v\x01|hk=w", []byte{}, false, []byte{})
	f.Fuzz(func(t *testing.T, s string, body []byte, sendBody bool, ip []byte) {
		src, _ := netip.AddrFromSlice(ip)
		c := eventCall(s, body, sendBody, src)
		if got, want := encodeEvent(&c), oracleEncode(t, &c); !bytes.Equal(got, want) {
			t.Errorf("encodeEvent\n got %q\nwant %q", got, want)
		}
	})
}

func BenchmarkEncodeEvent(b *testing.B) {
	c := eventCall("GET|/orders/7|user@123|req-1|shop/orders|shop/mobile-app|htoken=t-1|meta|tier=gold", nil, false, netip.MustParseAddr("203.0.113.9"))
	b.ReportAllocs()
	for b.Loop() {
		encodeEvent(&c)
	}
}

func BenchmarkOracleEncodeEvent(b *testing.B) {
	c := eventCall("GET|/orders/7|user@123|req-1|shop/orders|shop/mobile-app|htoken=t-1|meta|tier=gold", nil, false, netip.MustParseAddr("203.0.113.9"))
	b.ReportAllocs()
	for b.Loop() {
		oracleEncode(b, &c)
	}
}
