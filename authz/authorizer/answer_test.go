package authorizer

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"

	authv1alpha1 "github.com/portcullis-dev/portcullis/api/v1alpha1"
)

const (
	apig    = authv1alpha1.ResponseFormatAPIG
	tencent = authv1alpha1.ResponseFormatTencent
	mpaas   = authv1alpha1.ResponseFormatMPaaS
)

// wrap returns the function-platform wrapping of an APIG answer.
func wrap(inner string) string {
	b, _ := json.Marshal(map[string]any{"statusCode": 200, "body": inner})
	return string(b)
}

func TestParseAnswer(t *testing.T) {
	manyKeys := func(n int) string {
		var b strings.Builder
		b.WriteString(`{"status":"allow","context":{`)
		for i := range n {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `"k%d":%d`, i, i)
		}
		b.WriteString("}}")
		return b.String()
	}
	big := strings.Repeat("x", 8192-len("user")) // exactly 8 KiB with its key
	kv := func(pairs ...string) []KV {
		var out []KV
		for i := 0; i < len(pairs); i += 2 {
			out = append(out, KV{pairs[i], pairs[i+1]})
		}
		return out
	}
	tests := []struct {
		name   string
		format authv1alpha1.ResponseFormat
		body   string
		allow  bool
		ctx    []KV
		reason string // "" = no error
	}{
		// APIG
		{name: "apig allow", format: apig, body: `{"status":"allow"}`, allow: true},
		{name: "apig deny", format: apig, body: `{"status":"deny"}`},
		{name: "apig allow context rendered and sorted", format: apig,
			body:  `{"status":"allow","context":{"user":"u-1","tier":"gold","n":42,"f":-1.5e3,"ok":true,"no":false,"e":""}}`,
			allow: true, ctx: kv("e", "", "f", "-1.5e3", "n", "42", "no", "false", "ok", "true", "tier", "gold", "user", "u-1")},
		{name: "apig empty context", format: apig, body: `{"status":"allow","context":{}}`, allow: true},
		{name: "apig context before status", format: apig, body: `{"context":{"a":"b"},"status":"allow"}`, allow: true, ctx: kv("a", "b")},
		{name: "apig deny drops context", format: apig, body: `{"status":"deny","context":{"user":"u","bad key":null}}`},
		{name: "apig unknown fields ignored", format: apig, body: `{"status":"allow","message":"ok","extra":{"a":[1,{"b":null}]}}`, allow: true},
		{name: "apig whitespace around", format: apig, body: " \n\t{\"status\":\"allow\"}\r\n ", allow: true},
		{name: "apig unicode escape in value", format: apig, body: `{"status":"allow","context":{"u":"caf\u00e9"}}`, allow: true, ctx: kv("u", "café")},
		{name: "apig tab allowed in value", format: apig, body: `{"status":"allow","context":{"u":"a\tb"}}`, allow: true, ctx: kv("u", "a\tb")},
		{name: "apig wrapped allow", format: apig, body: wrap(`{"status":"allow","context":{"user":"u-1"}}`), allow: true, ctx: kv("user", "u-1")},
		{name: "apig wrapped deny", format: apig, body: wrap(`{"status":"deny"}`)},
		{name: "apig wrapped with headers and isBase64Encoded false", format: apig,
			body: `{"statusCode":200,"isBase64Encoded":false,"headers":{"Content-Type":"application/json"},"body":"{\"status\":\"allow\"}"}`, allow: true},
		{name: "apig wrapped base64", format: apig,
			body:  `{"statusCode":200,"isBase64Encoded":true,"body":"` + base64.StdEncoding.EncodeToString([]byte(`{"status":"allow","context":{"a":1}}`)) + `"}`,
			allow: true, ctx: kv("a", "1")},

		{name: "apig status wrong case", format: apig, body: `{"status":"Allow"}`, reason: ReasonMalformed},
		{name: "apig status ALLOW", format: apig, body: `{"status":"ALLOW"}`, reason: ReasonMalformed},
		{name: "apig status padded", format: apig, body: `{"status":" allow"}`, reason: ReasonMalformed},
		{name: "apig status other", format: apig, body: `{"status":"ok"}`, reason: ReasonMalformed},
		{name: "apig status bool", format: apig, body: `{"status":true}`, reason: ReasonMalformed},
		{name: "apig status null", format: apig, body: `{"status":null}`, reason: ReasonMalformed},
		{name: "apig status missing", format: apig, body: `{"context":{}}`, reason: ReasonMalformed},
		{name: "apig key wrong case", format: apig, body: `{"Status":"allow"}`, reason: ReasonMalformed},
		{name: "apig key wrong case beside right one", format: apig, body: `{"status":"allow","STATUS":"deny"}`, reason: ReasonMalformed},
		{name: "apig duplicate status", format: apig, body: `{"status":"deny","status":"allow"}`, reason: ReasonMalformed},
		{name: "apig duplicate in context", format: apig, body: `{"status":"allow","context":{"a":"1","a":"2"}}`, reason: ReasonMalformed},
		{name: "apig duplicate deep in unknown", format: apig, body: `{"status":"allow","x":[{"a":1,"a":2}]}`, reason: ReasonMalformed},
		{name: "apig trailing garbage", format: apig, body: `{"status":"allow"}x`, reason: ReasonMalformed},
		{name: "apig two objects", format: apig, body: `{"status":"allow"}{"status":"allow"}`, reason: ReasonMalformed},
		{name: "apig trailing comma", format: apig, body: `{"status":"allow",}`, reason: ReasonMalformed},
		{name: "apig truncated", format: apig, body: `{"status":"allow"`, reason: ReasonMalformed},
		{name: "apig array", format: apig, body: `[{"status":"allow"}]`, reason: ReasonMalformed},
		{name: "apig string", format: apig, body: `"allow"`, reason: ReasonMalformed},
		{name: "apig null", format: apig, body: `null`, reason: ReasonMalformed},
		{name: "apig empty", format: apig, body: ``, reason: ReasonMalformed},
		{name: "apig bom", format: apig, body: "\ufeff{\"status\":\"allow\"}", reason: ReasonMalformed},
		{name: "apig context array", format: apig, body: `{"status":"allow","context":[]}`, reason: ReasonMalformed},
		{name: "apig context null", format: apig, body: `{"status":"allow","context":null}`, reason: ReasonMalformed},
		{name: "apig context string", format: apig, body: `{"status":"allow","context":"a=b"}`, reason: ReasonMalformed},
		{name: "apig deny context array", format: apig, body: `{"status":"deny","context":[]}`, reason: ReasonMalformed},
		{name: "apig wrapped status 500", format: apig, body: `{"statusCode":500,"body":"{\"status\":\"allow\"}"}`, reason: ReasonMalformed},
		{name: "apig wrapped status string", format: apig, body: `{"statusCode":"200","body":"{\"status\":\"allow\"}"}`, reason: ReasonMalformed},
		{name: "apig wrapped status 200.0", format: apig, body: `{"statusCode":200.0,"body":"{\"status\":\"allow\"}"}`, reason: ReasonMalformed},
		{name: "apig wrapped status 2e2", format: apig, body: `{"statusCode":2e2,"body":"{\"status\":\"allow\"}"}`, reason: ReasonMalformed},
		{name: "apig wrapped body object", format: apig, body: `{"statusCode":200,"body":{"status":"allow"}}`, reason: ReasonMalformed},
		{name: "apig wrapped body missing", format: apig, body: `{"statusCode":200}`, reason: ReasonMalformed},
		{name: "apig wrapped body garbage", format: apig, body: wrap(`{"status":"allow"} trailing`), reason: ReasonMalformed},
		{name: "apig wrapped body wrong case", format: apig, body: wrap(`{"status":"Allow"}`), reason: ReasonMalformed},
		{name: "apig wrapped twice", format: apig, body: wrap(wrap(`{"status":"allow"}`)), reason: ReasonMalformed},
		{name: "apig wrapped beside status", format: apig, body: `{"statusCode":200,"status":"allow","body":"{\"status\":\"allow\"}"}`, reason: ReasonMalformed},
		{name: "apig wrapped duplicate body", format: apig, body: `{"statusCode":200,"body":"{\"status\":\"deny\"}","body":"{\"status\":\"allow\"}"}`, reason: ReasonMalformed},
		{name: "apig wrapped bad base64", format: apig, body: `{"statusCode":200,"isBase64Encoded":true,"body":"{\"status\":\"allow\"}"}`, reason: ReasonMalformed},
		{name: "apig wrapped isBase64Encoded string", format: apig, body: `{"statusCode":200,"isBase64Encoded":"false","body":"{\"status\":\"allow\"}"}`, reason: ReasonMalformed},
		{name: "apig wrapped headers array", format: apig, body: `{"statusCode":200,"headers":[],"body":"{\"status\":\"allow\"}"}`, reason: ReasonMalformed},
		{name: "apig wrapped key wrong case", format: apig, body: `{"StatusCode":200,"body":"{\"status\":\"allow\"}"}`, reason: ReasonMalformed},

		// Context limits (allow only).
		{name: "context 64 keys", format: apig, body: manyKeys(64), allow: true, ctx: func() []KV {
			var out []KV
			for i := range 64 {
				out = append(out, KV{fmt.Sprintf("k%d", i), fmt.Sprint(i)})
			}
			slicesSortKV(out)
			return out
		}()},
		{name: "context 65 keys", format: apig, body: manyKeys(65), reason: ReasonContext},
		{name: "context 8 KiB", format: apig, body: `{"status":"allow","context":{"user":"` + big + `"}}`, allow: true, ctx: kv("user", big)},
		{name: "context over 8 KiB", format: apig, body: `{"status":"allow","context":{"user":"` + big + `x"}}`, reason: ReasonContext},
		{name: "context key with space", format: apig, body: `{"status":"allow","context":{"a b":"1"}}`, reason: ReasonContext},
		{name: "context key starting with digit", format: apig, body: `{"status":"allow","context":{"1a":"1"}}`, reason: ReasonContext},
		{name: "context key starting with dash", format: apig, body: `{"status":"allow","context":{"-a":"1"}}`, reason: ReasonContext},
		{name: "context key empty", format: apig, body: `{"status":"allow","context":{"":"1"}}`, reason: ReasonContext},
		{name: "context key 32 chars", format: apig, body: `{"status":"allow","context":{"` + "a" + strings.Repeat("b", 31) + `":"1"}}`, allow: true, ctx: kv("a"+strings.Repeat("b", 31), "1")},
		{name: "context key 33 chars", format: apig, body: `{"status":"allow","context":{"` + strings.Repeat("a", 33) + `":"1"}}`, reason: ReasonContext},
		{name: "context key non-ascii", format: apig, body: `{"status":"allow","context":{"usér":"1"}}`, reason: ReasonContext},
		{name: "context key with dot", format: apig, body: `{"status":"allow","context":{"a.b":"1"}}`, reason: ReasonContext},
		{name: "context key with underscore and dash", format: apig, body: `{"status":"allow","context":{"a_b-C9":"1"}}`, allow: true, ctx: kv("a_b-C9", "1")},
		{name: "context value null", format: apig, body: `{"status":"allow","context":{"a":null}}`, reason: ReasonContext},
		{name: "context value object", format: apig, body: `{"status":"allow","context":{"a":{}}}`, reason: ReasonContext},
		{name: "context value array", format: apig, body: `{"status":"allow","context":{"a":[]}}`, reason: ReasonContext},
		{name: "context value CR", format: apig, body: `{"status":"allow","context":{"a":"x\ry"}}`, reason: ReasonContext},
		{name: "context value LF", format: apig, body: `{"status":"allow","context":{"a":"x\ny"}}`, reason: ReasonContext},
		{name: "context value NUL", format: apig, body: `{"status":"allow","context":{"a":"x\u0000y"}}`, reason: ReasonContext},
		{name: "context value DEL", format: apig, body: `{"status":"allow","context":{"a":"x\u007fy"}}`, reason: ReasonContext},
		{name: "context value vertical tab", format: apig, body: `{"status":"allow","context":{"a":"x\u000by"}}`, reason: ReasonContext},

		// Tencent
		{name: "tencent allow", format: tencent, body: `{"api-auth":true}`, allow: true},
		{name: "tencent deny", format: tencent, body: `{"api-auth":false}`},
		{name: "tencent unknown field ignored", format: tencent, body: `{"api-auth":true,"msg":"x"}`, allow: true},
		{name: "tencent string", format: tencent, body: `{"api-auth":"true"}`, reason: ReasonMalformed},
		{name: "tencent number", format: tencent, body: `{"api-auth":1}`, reason: ReasonMalformed},
		{name: "tencent null", format: tencent, body: `{"api-auth":null}`, reason: ReasonMalformed},
		{name: "tencent missing", format: tencent, body: `{}`, reason: ReasonMalformed},
		{name: "tencent wrong case", format: tencent, body: `{"API-Auth":true}`, reason: ReasonMalformed},
		{name: "tencent duplicate", format: tencent, body: `{"api-auth":false,"api-auth":true}`, reason: ReasonMalformed},
		{name: "tencent apig answer", format: tencent, body: `{"status":"allow"}`, reason: ReasonMalformed},
		{name: "tencent trailing", format: tencent, body: `{"api-auth":true}]`, reason: ReasonMalformed},

		// MPaaS
		{name: "mpaas allow", format: mpaas, body: `{"success":true}`, allow: true},
		{name: "mpaas allow principal", format: mpaas, body: `{"success":true,"principal":{"uid":"7","vip":true}}`, allow: true, ctx: kv("uid", "7", "vip", "true")},
		{name: "mpaas deny", format: mpaas, body: `{"success":false,"principal":{"uid":"7"}}`},
		{name: "mpaas string", format: mpaas, body: `{"success":"true"}`, reason: ReasonMalformed},
		{name: "mpaas missing", format: mpaas, body: `{"principal":{}}`, reason: ReasonMalformed},
		{name: "mpaas principal array", format: mpaas, body: `{"success":true,"principal":["a"]}`, reason: ReasonMalformed},
		{name: "mpaas principal null", format: mpaas, body: `{"success":true,"principal":null}`, reason: ReasonMalformed},
		{name: "mpaas principal bad key", format: mpaas, body: `{"success":true,"principal":{"a b":"1"}}`, reason: ReasonContext},
		{name: "mpaas duplicate", format: mpaas, body: `{"success":false,"success":true}`, reason: ReasonMalformed},
		{name: "mpaas wrong case", format: mpaas, body: `{"Success":true}`, reason: ReasonMalformed},

		{name: "unknown format", format: "XML", body: `{"status":"allow"}`, reason: ReasonMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			allow, ctx, err := parseAnswer(tt.format, []byte(tt.body))
			if tt.reason != "" {
				if err == nil || err.Reason != tt.reason {
					t.Fatalf("parseAnswer = %v, %v, %v; want reason %q", allow, ctx, err, tt.reason)
				}
				if allow || ctx != nil {
					t.Errorf("failure with allow=%v ctx=%v", allow, ctx)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseAnswer error %v", err)
			}
			if allow != tt.allow || !reflect.DeepEqual(ctx, tt.ctx) {
				t.Errorf("parseAnswer = %v, %v; want %v, %v", allow, ctx, tt.allow, tt.ctx)
			}
		})
	}
}

func slicesSortKV(kvs []KV) {
	for i := 1; i < len(kvs); i++ {
		for j := i; j > 0 && kvs[j].Key < kvs[j-1].Key; j-- {
			kvs[j], kvs[j-1] = kvs[j-1], kvs[j]
		}
	}
}

// TestErrorMessagesEchoNothing checks that a failure never repeats what the function sent.
func TestErrorMessagesEchoNothing(t *testing.T) {
	for _, body := range []string{
		`{"status":"secret-token-xyz"}`,
		`{"status":"allow","context":{"secret-token-xyz-but-far-too-long-for-a-key":"1"}}`,
		`{"status":"allow","context":{"a":"secret-token-xyz\n"}}`,
		`secret-token-xyz`,
	} {
		_, _, err := parseAnswer(apig, []byte(body))
		if err == nil || strings.Contains(err.Error(), "secret-token-xyz") {
			t.Errorf("parseAnswer(%q) error %v", body, err)
		}
	}
}

// oracleAllow decides independently of parseAnswer whether body is a well-formed allow in
// the given format (as far as a map decode can tell: no duplicate keys, valid context).
func oracleAllow(format authv1alpha1.ResponseFormat, body []byte) bool {
	m, ok := decodeMap(body)
	if !ok {
		return false
	}
	validCtx := func(v any, present bool) bool {
		if !present {
			return true
		}
		c, ok := v.(map[string]any)
		if !ok || len(c) > 64 {
			return false
		}
		total := 0
		for k, v := range c {
			if !contextKeyRE(k) {
				return false
			}
			var s string
			switch v := v.(type) {
			case string:
				s = v
			case json.Number:
				s = string(v)
			case bool:
				s = fmt.Sprint(v)
			default:
				return false
			}
			for _, r := range []byte(s) {
				if r == '\r' || r == '\n' || r == 0 {
					return false
				}
			}
			total += len(k) + len(s)
		}
		return total <= 8192
	}
	switch format {
	case apig:
		if sc, ok := m["statusCode"]; ok {
			if sc != json.Number("200") {
				return false
			}
			s, ok := m["body"].(string)
			if !ok {
				return false
			}
			if b, _ := m["isBase64Encoded"].(bool); b {
				d, err := base64.StdEncoding.DecodeString(s)
				if err != nil {
					return false
				}
				s = string(d)
			}
			inner, ok := decodeMap([]byte(s))
			if !ok {
				return false
			}
			if _, ok := inner["statusCode"]; ok {
				return false
			}
			c, has := inner["context"]
			return inner["status"] == "allow" && validCtx(c, has)
		}
		c, has := m["context"]
		return m["status"] == "allow" && validCtx(c, has)
	case tencent:
		return m["api-auth"] == true
	case mpaas:
		c, has := m["principal"]
		return m["success"] == true && validCtx(c, has)
	}
	return false
}

func decodeMap(b []byte) (map[string]any, bool) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, false
	}
	var rest json.RawMessage
	if err := dec.Decode(&rest); err != io.EOF {
		return nil, false
	}
	return m, true
}

func contextKeyRE(k string) bool {
	if len(k) < 1 || len(k) > 32 {
		return false
	}
	for i, c := range []byte(k) {
		letter := c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
		if !letter && (i == 0 || !(c >= '0' && c <= '9' || c == '_' || c == '-')) {
			return false
		}
	}
	return true
}

func FuzzParseAnswer(f *testing.F) {
	seeds := []string{
		`{"status":"allow"}`, `{"status":"deny"}`, `{"status":"allow","context":{"user":"u","n":1,"b":true}}`,
		wrap(`{"status":"allow","context":{"a":"b"}}`), `{"statusCode":200,"isBase64Encoded":true,"body":"eyJzdGF0dXMiOiJhbGxvdyJ9"}`,
		`{"status":"Allow"}`, `{"status":"deny","status":"allow"}`, `{"status":"allow"}x`, `[]`, `null`, ``,
		`{"api-auth":true}`, `{"api-auth":false}`, `{"api-auth":"true"}`,
		`{"success":true,"principal":{"uid":"7"}}`, `{"success":false}`, `{"success":true,"principal":{"a":"x\ny"}}`,
		`{"status":"allow","context":{"a":{"b":[1,2,{"c":null}]}}}`, `{"status":"allow","x":{"y":{"y":1}}}`,
	}
	for _, s := range seeds {
		for fm := range byte(3) {
			f.Add(fm, []byte(s))
		}
	}
	formats := []authv1alpha1.ResponseFormat{apig, tencent, mpaas}
	f.Fuzz(func(t *testing.T, fm byte, body []byte) {
		agreesWithOracle(t, body)
		format := formats[int(fm)%len(formats)]
		allow, ctx, err := parseAnswer(format, body)
		if err != nil {
			if allow || ctx != nil {
				t.Fatalf("failure %v with allow=%v ctx=%v", err, allow, ctx)
			}
			switch err.Reason {
			case ReasonMalformed, ReasonContext:
			default:
				t.Fatalf("reason %q", err.Reason)
			}
			return
		}
		if !allow {
			if ctx != nil {
				t.Fatalf("deny with context %v", ctx)
			}
			return
		}
		if !oracleAllow(format, body) {
			t.Fatalf("%s allow for %q, which is not a well-formed allow", format, body)
		}
		if len(ctx) > 64 {
			t.Fatalf("%d context keys", len(ctx))
		}
		total := 0
		for i, kv := range ctx {
			if !contextKeyRE(kv.Key) || hasControl(kv.Value) || (i > 0 && ctx[i-1].Key >= kv.Key) {
				t.Fatalf("context %v", ctx)
			}
			total += len(kv.Key) + len(kv.Value)
		}
		if total > 8192 {
			t.Fatalf("context of %d bytes", total)
		}
	})
}
