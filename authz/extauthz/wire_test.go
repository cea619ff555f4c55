package extauthz

import (
	"bytes"
	"cmp"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/portcullis-dev/portcullis/authz/engine"
)

// wireSeeds are CheckRequests as Envoy, Istio and odd clients send them.
func wireSeeds() map[string]*authv3.CheckRequest {
	socket := func(a string) *corev3.Address {
		return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address: a, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 51234}}}}
	}
	meta, _ := structpb.NewStruct(map[string]any{"filter": map[string]any{"k": "v", "n": 1.5}})
	return map[string]*authv3.CheckRequest{
		"envoy headers map": {Attributes: &authv3.AttributeContext{
			Source:      &authv3.AttributeContext_Peer{Address: socket("10.1.2.3"), Principal: "spiffe://a/b"},
			Destination: &authv3.AttributeContext_Peer{Address: socket("10.0.0.9")},
			Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
				Id: "1234567890", Method: "POST", Path: "/orders/7?test=demo", Host: "api.example.com", Scheme: "http", Protocol: "HTTP/1.1",
				Headers: map[string]string{":authority": "api.example.com", ":method": "POST", ":path": "/orders/7?test=demo",
					"x-app-code": "code", "Token": "t0k", "x-envoy-auth-partial-body": "false", "content-length": "4"},
				Body: "body", Size: 4,
			}},
			ContextExtensions: map[string]string{"virtual_host": "api"},
			MetadataContext:   &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{"envoy.filters": meta}},
		}},
		"istio header_map with raw values": {Attributes: &authv3.AttributeContext{
			Source: &authv3.AttributeContext_Peer{Address: socket("::ffff:192.0.2.7")},
			Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
				HeaderMap: &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
					{Key: ":authority", RawValue: []byte("api.example.com")}, {Key: ":method", RawValue: []byte("GET")},
					{Key: ":path", RawValue: []byte("/a/%2e%2e/b")}, {Key: "cookie", Value: "a=1"}, {Key: "cookie", Value: "b=2"},
					{Key: "x-bin", RawValue: []byte("\xff\x00")}, {Key: "X-Upper", Value: "v"},
				}},
				RawBody: []byte{0, 1, 2},
			}},
			TlsSession: &authv3.AttributeContext_TLSSession{Sni: "api.example.com"},
		}},
		"pipe source, both header forms": {Attributes: &authv3.AttributeContext{
			Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_Pipe{Pipe: &corev3.Pipe{Path: "/run/s"}}}},
			Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
				Headers:   map[string]string{"host": "h1"},
				HeaderMap: &corev3.HeaderMap{Headers: []*corev3.HeaderValue{{Key: "host", Value: "h2"}}},
			}},
		}},
		"empty": {},
	}
}

// normalized sorts headers that came from a map (their order is the map's) and makes an empty
// header list nil.
func normalized(r engine.Request, fromMap bool) engine.Request {
	if len(r.Headers) == 0 {
		r.Headers = nil
	} else if fromMap {
		r.Headers = slices.Clone(r.Headers)
		slices.SortFunc(r.Headers, func(a, b engine.Header) int {
			return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Value, b.Value))
		})
	}
	return r
}

// agreesWithProto checks readCheck against proto.Unmarshal and Convert on b: where
// proto.Unmarshal reads b, readCheck reads the same request; where readCheck fails,
// proto.Unmarshal fails too.
func agreesWithProto(t *testing.T, b []byte) {
	t.Helper()
	var ref authv3.CheckRequest
	refErr := proto.Unmarshal(b, &ref)
	var f httpFields
	err := readCheck(b, &f)
	switch {
	case err != nil && refErr == nil:
		t.Fatalf("readCheck: %v; proto.Unmarshal read %v", err, &ref)
	case err != nil || refErr != nil:
		return
	}
	fromMap := len(ref.GetAttributes().GetRequest().GetHttp().GetHeaderMap().GetHeaders()) == 0
	got, want := normalized(f.request(), fromMap), normalized(Convert(&ref), fromMap)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("readCheck read\n%+v\nConvert(proto.Unmarshal)\n%+v", got, want)
	}
}

func TestReadCheckMatchesProto(t *testing.T) {
	for name, req := range wireSeeds() {
		t.Run(name, func(t *testing.T) {
			b, err := proto.Marshal(req)
			if err != nil {
				t.Fatal(err)
			}
			agreesWithProto(t, b) // proto.Unmarshal reads what proto.Marshal wrote: so must readCheck
		})
	}
	// Hand-made encodings proto.Marshal never writes.
	tag := func(b []byte, num protowire.Number, typ protowire.Type) []byte {
		return protowire.AppendTag(b, num, typ)
	}
	msg := func(num protowire.Number, fields ...[]byte) []byte {
		return protowire.AppendBytes(tag(nil, num, protowire.BytesType), slices.Concat(fields...))
	}
	strField := func(num protowire.Number, s string) []byte { return msg(num, []byte(s)) }
	http := func(fields ...[]byte) []byte { return msg(1, msg(4, msg(2, fields...))) }
	address := func(fields ...[]byte) []byte { return msg(1, msg(1, msg(1, fields...))) }
	socket := func(fields ...[]byte) []byte { return address(msg(1, fields...)) }
	for name, tt := range map[string]struct {
		b     []byte
		fails bool
	}{
		"a field twice: the last wins":           {http(strField(2, "GET"), strField(2, "POST")), false},
		"a message twice: merged":                {slices.Concat(http(strField(2, "GET")), http(strField(4, "/p"))), false},
		"a map key twice: the last value wins":   {http(msg(3, strField(1, "k"), strField(2, "1")), msg(3, strField(1, "k"), strField(2, "2"))), false},
		"a map entry without its key or value":   {http(msg(3, strField(2, "v")), msg(3, strField(1, "k"))), false},
		"a known field as a varint: unknown":     {http(protowire.AppendVarint(tag(nil, 2, protowire.VarintType), 7), strField(4, "/p")), false},
		"an unknown group":                       {http(tag(nil, 99, protowire.StartGroupType), protowire.AppendVarint(tag(nil, 1, protowire.VarintType), 1), tag(nil, 99, protowire.EndGroupType), strField(4, "/p")), false},
		"a group that does not end":              {http(tag(nil, 99, protowire.StartGroupType), strField(4, "/p")), true},
		"an end group alone":                     {http(tag(nil, 99, protowire.EndGroupType)), true},
		"field number 0":                         {http(strField(0, "x")), true},
		"the largest field number":               {http(strField(protowire.MaxValidNumber, "x")), false},
		"past the largest field number":          {http(strField(protowire.MaxValidNumber+1, "x")), true},
		"a length past the end":                  {http(tag(nil, 2, protowire.BytesType), []byte{10, 'G'}), true},
		"a varint of 11 bytes":                   {http(tag(nil, 9, protowire.VarintType), []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}), true},
		"invalid UTF-8 in the method":            {http(strField(2, "G\xffT")), true},
		"invalid UTF-8 in a map key":             {http(msg(3, strField(1, "k\xff"), strField(2, "v"))), true},
		"invalid UTF-8 in the query":             {http(strField(7, "\xff")), true},
		"invalid UTF-8 in a raw value":           {http(msg(13, msg(1, strField(1, "k"), strField(3, "\xff")))), false},
		"socket, pipe, socket without address":   {slices.Concat(socket(strField(2, "10.0.0.1")), address(msg(2)), socket()), false},
		"socket twice: merged":                   {slices.Concat(socket(strField(2, "10.0.0.1")), socket(protowire.AppendVarint(tag(nil, 3, protowire.VarintType), 80))), false},
		"pipe after socket":                      {slices.Concat(socket(strField(2, "10.0.0.1")), address(msg(3))), false},
		"invalid UTF-8 in the source resolver":   {socket(strField(5, "\xff")), true},
		"wire type 7":                            {http([]byte{0x0f}), true},
		"raw body, then a body":                  {http(strField(12, "raw"), strField(11, "body")), false},
		"an empty raw value keeps the value":     {http(msg(13, msg(1, strField(1, "k"), strField(2, "v"), strField(3, "")))), false},
		"a header_map entry as a varint":         {http(msg(13, protowire.AppendVarint(tag(nil, 1, protowire.VarintType), 1)), msg(3, strField(1, "k"))), false},
		"attributes as a varint: unknown":        {protowire.AppendVarint(tag(nil, 1, protowire.VarintType), 1), false},
		"header_map, then headers in a 2nd http": {slices.Concat(http(msg(13, msg(1, strField(1, "a")))), http(msg(3, strField(1, "b")))), false},
	} {
		t.Run(name, func(t *testing.T) {
			agreesWithProto(t, tt.b)
			var f httpFields
			if err := readCheck(tt.b, &f); (err != nil) != tt.fails {
				t.Errorf("readCheck: %v", err)
			}
			var ref authv3.CheckRequest
			if err := proto.Unmarshal(tt.b, &ref); (err != nil) != tt.fails {
				t.Errorf("proto.Unmarshal: %v", err) // the case does not test what it says
			}
		})
	}
}

func FuzzReadCheck(f *testing.F) {
	for _, req := range wireSeeds() {
		b, err := proto.Marshal(req)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(agreesWithProto)
}

func BenchmarkReadCheck(b *testing.B) {
	msg, err := proto.Marshal(wireSeeds()["envoy headers map"])
	if err != nil {
		b.Fatal(err)
	}
	b.Run("readCheck", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var f httpFields
			buf := slices.Clone(msg) // as the codec copies the message out of gRPC's buffers
			if err := readCheck(buf, &f); err != nil {
				b.Fatal(err)
			}
			_ = f.request()
		}
	})
	b.Run("proto.Unmarshal+Convert", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var req authv3.CheckRequest
			if err := proto.Unmarshal(msg, &req); err != nil {
				b.Fatal(err)
			}
			_ = Convert(&req)
		}
	})
}

// TestAppendOKMatchesProto: the response appendOK writes for an allow is byte for byte what
// proto.Marshal writes for Response, on hand-picked and generated decisions.
func TestAppendOKMatchesProto(t *testing.T) {
	names := []string{"x-portcullis-credential", "x-portcullis-app-key", "x-user", "x-user-id", "x-user-tier", "x-other", "authorization", "é", ""}
	values := []string{"shop/app", "", "v", strings.Repeat("long", 40)}
	rng := rand.New(rand.NewPCG(1, 2))
	some := func(from []string, n int) []string {
		out := make([]string, rng.IntN(n+1))
		for i := range out {
			out[i] = from[rng.IntN(len(from))]
		}
		return out
	}
	headers := func(n int) []engine.Header {
		var hs []engine.Header
		for _, name := range some(names, n) {
			hs = append(hs, engine.Header{Name: name, Value: values[rng.IntN(len(values))]})
		}
		return hs
	}
	cases := []struct {
		r engine.Request
		d engine.Decision
	}{
		{},
		{d: engine.Decision{Upstream: []engine.Header{{Name: "x-portcullis-credential", Value: "shop/app"}, {Name: "x-portcullis-app-key", Value: "k"}}}},
		{ // a removed name also set, a name removed twice, a prefix matching a set header and a repeated one
			r: engine.Request{Headers: []engine.Header{{Name: "x-user-id", Value: "1"}, {Name: "x-user-id", Value: "2"}, {Name: "x-user-tier"}, {Name: "x-user"}}},
			d: engine.Decision{Upstream: []engine.Header{{Name: "x-user-tier", Value: "gold"}}, Remove: []string{"x-user", "x-user-tier", "x-user"}, RemovePrefixes: []string{"x-user-", "x-us"}},
		},
		{d: engine.Decision{Remove: []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"}}}, // more than appendOK's array
	}
	for range 500 {
		cases = append(cases, struct {
			r engine.Request
			d engine.Decision
		}{engine.Request{Headers: headers(6)}, engine.Decision{Upstream: headers(4), Remove: some(names, 3), RemovePrefixes: some([]string{"x-user", "x-", "x-user-"}, 2)}})
	}
	for i, c := range cases {
		want, err := proto.MarshalOptions{Deterministic: true}.Marshal(Response(&c.r, &c.d))
		if err != nil {
			t.Fatal(err)
		}
		if got := appendOK(nil, &c.r, &c.d); !bytes.Equal(got, want) {
			t.Fatalf("case %d (%+v, %+v):\n got %x\nwant %x", i, c.r, c.d, got, want)
		}
	}
	if raceEnabled {
		return // allocation counts mean nothing under the race detector
	}
	c := cases[2]
	if n := testing.AllocsPerRun(100, func() { appendOK(nil, &c.r, &c.d) }); n != 1 {
		t.Errorf("appendOK made %v allocations, want 1", n)
	}
}

var raceEnabled bool

func TestHeadersToRemove(t *testing.T) {
	hs := func(names ...string) []engine.Header {
		var out []engine.Header
		for _, n := range names {
			out = append(out, engine.Header{Name: n, Value: "v"})
		}
		return out
	}
	for _, tt := range []struct {
		name     string
		in       []string // the request's header names
		set      []string // upstream header names of the decision
		remove   []string
		prefixes []string
		want     []string
	}{
		{name: "nothing"},
		{name: "exact names, present or not, in order", in: []string{"b"}, remove: []string{"a", "b"}, want: []string{"a", "b"}},
		{name: "an exact name twice", remove: []string{"a", "a"}, want: []string{"a"}},
		{name: "never a header the decision sets", in: []string{"x-user-tier"}, set: []string{"a", "x-user-tier"}, remove: []string{"a", "b"}, prefixes: []string{"x-user-"}, want: []string{"b"}},
		{name: "incoming headers under a prefix, each once", in: []string{"x-user-id", "accept", "x-user-id", "x-user-tier"}, prefixes: []string{"x-user-", "x-user"}, want: []string{"x-user-id", "x-user-tier"}},
		{name: "an exact name under a prefix too: once", in: []string{"x-user-id"}, remove: []string{"x-user-id"}, prefixes: []string{"x-user-"}, want: []string{"x-user-id"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := engine.Request{Headers: hs(tt.in...)}
			d := engine.Decision{Upstream: hs(tt.set...), Remove: tt.remove, RemovePrefixes: tt.prefixes}
			if got := appendHeadersToRemove(nil, &r, &d); !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
