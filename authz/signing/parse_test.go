package signing

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

const sig64 = "533cd74ce91a85bd93dcfac2c13df4161e2d828d87be117961746902ad465460"

func TestParseAuthorization(t *testing.T) {
	want := Authorization{AppKey: "key-1", SignedHeaders: []string{"content-type", "host", "x-sdk-date"}, Signature: sig64}
	valid := []struct{ name, in string }{
		{"as the SDKs send it", "SDK-HMAC-SHA256 Access=key-1, SignedHeaders=content-type;host;x-sdk-date, Signature=" + sig64},
		{"no space after commas", "SDK-HMAC-SHA256 Access=key-1,SignedHeaders=content-type;host;x-sdk-date,Signature=" + sig64},
		{"tabs and several spaces", "SDK-HMAC-SHA256\t  Access=key-1 ,\t SignedHeaders=content-type;host;x-sdk-date ,  Signature=" + sig64 + " "},
		{"other order", "SDK-HMAC-SHA256 Signature=" + sig64 + ", Access=key-1, SignedHeaders=content-type;host;x-sdk-date"},
		{"upper-case signature", "SDK-HMAC-SHA256 Access=key-1, SignedHeaders=content-type;host;x-sdk-date, Signature=" + strings.ToUpper(sig64)},
		{"surrounding space", "  SDK-HMAC-SHA256 Access=key-1, SignedHeaders=content-type;host;x-sdk-date, Signature=" + sig64 + "\t"},
	}
	for _, tt := range valid {
		got, err := ParseAuthorization(tt.in)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if got.AppKey != want.AppKey || got.Signature != want.Signature || !slices.Equal(got.SignedHeaders, want.SignedHeaders) {
			t.Errorf("%s: got %+v", tt.name, got)
		}
	}

	if got, err := ParseAuthorization("SDK-HMAC-SHA256 Access=k=v/x+y, SignedHeaders=x-sdk-date, Signature=" + sig64); err != nil ||
		got.AppKey != "k=v/x+y" || !slices.Equal(got.SignedHeaders, []string{"x-sdk-date"}) {
		t.Errorf("'=' in Access, one signed header: %+v, %v", got, err)
	}

	const sh = ", SignedHeaders=host;x-sdk-date, Signature=" + sig64
	bad := []struct {
		name, in string
		want     error
		msg      string
	}{
		{"empty", "", ErrNotSigned, ""},
		{"bearer", "Bearer abc", ErrNotSigned, ""},
		{"basic", "Basic dXNlcjpwYXNz", ErrNotSigned, ""},
		{"other algorithm", "SDK-HMAC-SM3 Access=k" + sh, ErrNotSigned, ""},
		{"longer scheme name", "SDK-HMAC-SHA256X Access=k" + sh, ErrNotSigned, ""},
		{"AWS", "AWS4-HMAC-SHA256 Credential=a/b, SignedHeaders=host, Signature=" + sig64, ErrNotSigned, ""},
		{"scheme in lower case", "sdk-hmac-sha256 Access=k" + sh, ErrMalformed, "written"},
		{"scheme alone", "SDK-HMAC-SHA256", ErrMalformed, "after"},
		{"scheme and spaces", "SDK-HMAC-SHA256   ", ErrMalformed, "after"},
		{"no space after scheme", "SDK-HMAC-SHA256,Access=k" + sh, ErrMalformed, "after"},
		{"missing Access", "SDK-HMAC-SHA256 SignedHeaders=host;x-sdk-date, Signature=" + sig64, ErrMalformed, "missing Access"},
		{"missing SignedHeaders", "SDK-HMAC-SHA256 Access=k, Signature=" + sig64, ErrMalformed, "missing SignedHeaders"},
		{"missing Signature", "SDK-HMAC-SHA256 Access=k, SignedHeaders=host;x-sdk-date", ErrMalformed, "missing Signature"},
		{"duplicate Access", "SDK-HMAC-SHA256 Access=k, Access=k" + sh, ErrMalformed, "duplicate"},
		{"duplicate Signature", "SDK-HMAC-SHA256 Access=k" + sh + ", Signature=" + sig64, ErrMalformed, "duplicate"},
		{"unknown parameter", "SDK-HMAC-SHA256 Access=k, Credential=x" + sh, ErrMalformed, "unknown"},
		{"parameter name case", "SDK-HMAC-SHA256 access=k" + sh, ErrMalformed, "unknown"},
		{"space around '='", "SDK-HMAC-SHA256 Access = k" + sh, ErrMalformed, "unknown"},
		{"parameter without value", "SDK-HMAC-SHA256 Access" + sh, ErrMalformed, "no value"},
		{"empty parameter", "SDK-HMAC-SHA256 Access=k,," + sh[1:], ErrMalformed, "empty parameter"},
		{"trailing comma", "SDK-HMAC-SHA256 Access=k" + sh + ",", ErrMalformed, "empty parameter"},
		{"empty Access", "SDK-HMAC-SHA256 Access=" + sh, ErrMalformed, "empty Access"},
		{"space in Access", "SDK-HMAC-SHA256 Access=a b" + sh, ErrMalformed, "Access"},
		{"non-ASCII Access", "SDK-HMAC-SHA256 Access=ключ" + sh, ErrMalformed, "Access"},
		{"long Access", "SDK-HMAC-SHA256 Access=" + strings.Repeat("k", 257) + sh, ErrMalformed, "Access"},
		{"empty SignedHeaders", "SDK-HMAC-SHA256 Access=k, SignedHeaders=, Signature=" + sig64, ErrMalformed, "empty SignedHeaders"},
		{"upper-case SignedHeaders", "SDK-HMAC-SHA256 Access=k, SignedHeaders=Host;x-sdk-date, Signature=" + sig64, ErrMalformed, "lower-case"},
		{"unsorted SignedHeaders", "SDK-HMAC-SHA256 Access=k, SignedHeaders=x-sdk-date;host, Signature=" + sig64, ErrMalformed, "sorted"},
		{"repeated signed header", "SDK-HMAC-SHA256 Access=k, SignedHeaders=host;host;x-sdk-date, Signature=" + sig64, ErrMalformed, "twice"},
		{"empty signed header", "SDK-HMAC-SHA256 Access=k, SignedHeaders=host;;x-sdk-date, Signature=" + sig64, ErrMalformed, "empty name"},
		{"trailing ';'", "SDK-HMAC-SHA256 Access=k, SignedHeaders=host;x-sdk-date;, Signature=" + sig64, ErrMalformed, "empty name"},
		{"space in SignedHeaders", "SDK-HMAC-SHA256 Access=k, SignedHeaders=host; x-sdk-date, Signature=" + sig64, ErrMalformed, "not allowed"},
		{"pseudo-header", "SDK-HMAC-SHA256 Access=k, SignedHeaders=:authority;x-sdk-date, Signature=" + sig64, ErrMalformed, "not allowed"},
		{"no x-sdk-date", "SDK-HMAC-SHA256 Access=k, SignedHeaders=content-type;host, Signature=" + sig64, ErrMalformed, "x-sdk-date"},
		{"too many signed headers", "SDK-HMAC-SHA256 Access=k, SignedHeaders=" + manyHeaders(129) + ", Signature=" + sig64, ErrMalformed, "more than"},
		{"short signature", "SDK-HMAC-SHA256 Access=k, SignedHeaders=host;x-sdk-date, Signature=" + sig64[:63], ErrMalformed, "64 hex"},
		{"long signature", "SDK-HMAC-SHA256 Access=k, SignedHeaders=host;x-sdk-date, Signature=" + sig64 + "0", ErrMalformed, "64 hex"},
		{"non-hex signature", "SDK-HMAC-SHA256 Access=k, SignedHeaders=host;x-sdk-date, Signature=" + sig64[:63] + "g", ErrMalformed, "64 hex"},
		{"empty signature", "SDK-HMAC-SHA256 Access=k, SignedHeaders=host;x-sdk-date, Signature=", ErrMalformed, "64 hex"},
		{"quoted signature", "SDK-HMAC-SHA256 Access=k, SignedHeaders=host;x-sdk-date, Signature=\"" + sig64 + "\"", ErrMalformed, "64 hex"},
	}
	for _, tt := range bad {
		_, err := ParseAuthorization(tt.in)
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
			continue
		}
		if tt.want == ErrMalformed && errors.Is(err, ErrNotSigned) {
			t.Errorf("%s: both malformed and not signed", tt.name)
		}
		if !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%s: message %q does not say %q", tt.name, err, tt.msg)
		}
	}
}

func manyHeaders(n int) string {
	names := make([]string, 0, n)
	for i := 0; len(names) < n-1; i++ {
		names = append(names, "h"+strings.Repeat("a", i/26)+string(rune('a'+i%26)))
	}
	names = append(names, "x-sdk-date")
	slices.Sort(names)
	return strings.Join(names, ";")
}

func TestParseAuthorizationMaxHeaders(t *testing.T) {
	v := "SDK-HMAC-SHA256 Access=k, SignedHeaders=" + manyHeaders(128) + ", Signature=" + sig64
	a, err := ParseAuthorization(v)
	if err != nil || len(a.SignedHeaders) != 128 {
		t.Fatalf("128 signed headers: %d, %v", len(a.SignedHeaders), err)
	}
}

func TestAuthorizationString(t *testing.T) {
	a := Authorization{AppKey: "k", SignedHeaders: []string{"host", "x-sdk-date"}, Signature: sig64}
	want := "SDK-HMAC-SHA256 Access=k, SignedHeaders=host;x-sdk-date, Signature=" + sig64
	if got := a.String(); got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
}
