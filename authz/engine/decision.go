package engine

import (
	"time"

	"github.com/portcullis-dev/portcullis/authz/compile"
	"github.com/portcullis-dev/portcullis/internal/jsonstr"
)

// Code is one of the closed set of error codes (DESIGN.md §3). Codes double as metric
// labels, so the set never grows at run time.
type Code uint8

// Error codes, in the order of DESIGN.md §3's table. CodeNone is an allow.
const (
	CodeNone Code = iota
	CodeRequestParametersFailure
	CodeRouteNotFound
	CodeAuthHeaderMissing
	CodeAuthFailure
	CodeUnauthorized
	CodeAuthorizerIdentitiesFailure
	CodeAccessDenied
	CodeAuthorizerFailure
	CodeAuthorizerConfFailure
	CodeNotReady
	numCodes
)

// NumCodes is the number of codes, CodeNone included: an array indexed by Code has as many
// elements.
const NumCodes = int(numCodes)

var codeInfo = [numCodes]struct {
	name   string
	status int
}{
	CodeNone:                        {"", 200},
	CodeRequestParametersFailure:    {"REQUEST_PARAMETERS_FAILURE", 400},
	CodeRouteNotFound:               {"ROUTE_NOT_FOUND", 404},
	CodeAuthHeaderMissing:           {"AUTH_HEADER_MISSING", 401},
	CodeAuthFailure:                 {"AUTH_FAILURE", 401},
	CodeUnauthorized:                {"UNAUTHORIZED", 403},
	CodeAuthorizerIdentitiesFailure: {"AUTHORIZER_IDENTITIES_FAILURE", 401},
	CodeAccessDenied:                {"ACCESS_DENIED", 403},
	CodeAuthorizerFailure:           {"AUTHORIZER_FAILURE", 500},
	CodeAuthorizerConfFailure:       {"AUTHORIZER_CONF_FAILURE", 500},
	CodeNotReady:                    {"NOT_READY", 503},
}

// String returns the error_code, e.g. "AUTH_FAILURE" ("" for an allow).
func (c Code) String() string { return codeInfo[c].name }

// Status returns the HTTP status of the code.
func (c Code) Status() int { return codeInfo[c].status }

// Codes lists every deny code, for metrics that want all labels present from the start.
func Codes() []Code {
	out := make([]Code, 0, numCodes-1)
	for c := CodeNone + 1; c < numCodes; c++ {
		out = append(out, c)
	}
	return out
}

// Header is one HTTP header; names are lower-case.
type Header struct{ Name, Value string }

// Factor says what one factor concluded, for `portcullis check` and logs.
type Factor uint8

// Factor outcomes.
const (
	FactorNotRequired Factor = iota
	FactorPassed
	FactorFailed
	FactorNotEvaluated // an earlier step denied
)

func (f Factor) String() string {
	return [...]string{"not required", "passed", "failed", "not evaluated"}[f]
}

// Decision is the answer to one request.
type Decision struct {
	// Code is CodeNone for an allow.
	Code Code
	// Message explains a deny (never a secret); it is error_msg.
	Message string
	// RequestID is the proxy's x-request-id, or one made up.
	RequestID string

	// Upstream are the headers to set on the request going upstream (allow only), with
	// overwrite semantics.
	Upstream []Header
	// Remove are incoming header names to strip before the request goes upstream (allow
	// only): the AppCode headers and mapped context headers. Shared with the binding:
	// read-only.
	Remove []string
	// RemovePrefixes are incoming header-name prefixes to strip (allow only): x-portcullis-*
	// and the context prefix. Read-only.
	RemovePrefixes []string

	// What was matched and concluded; nil/zero where not reached.
	Route      *compile.Route
	Credential *compile.Credential
	App        Factor
	Custom     Factor
	Degraded   bool
	// Cached: the custom authorizer's answer (allow or deny) came from its cache.
	Cached bool
	// AuthorizerTime is how long the custom authorizer took to answer (zero when it was not
	// asked).
	AuthorizerTime time.Duration
}

// Allowed reports whether the request may go upstream.
func (d *Decision) Allowed() bool { return d.Code == CodeNone }

// Status is the HTTP status to answer with: 200 for an allow.
func (d *Decision) Status() int { return d.Code.Status() }

// DenyHeaders are the response headers of a deny: x-portcullis-error always, and
// WWW-Authenticate on a 401.
func (d *Decision) DenyHeaders() []Header {
	h := []Header{{Name: "x-portcullis-error", Value: d.Code.String()}, {Name: "content-type", Value: "application/json"}}
	if d.Code.Status() == 401 {
		h = append(h, Header{Name: "www-authenticate", Value: `SDK-HMAC-SHA256 realm="portcullis"`})
	}
	return h
}

// Body is the JSON body of a deny: {"error_code","error_msg","request_id"}.
func (d *Decision) Body() []byte {
	b := make([]byte, 0, 64+len(d.Message)+len(d.RequestID))
	b = append(b, `{"error_code":"`...)
	b = append(b, d.Code.String()...)
	b = append(b, `","error_msg":`...)
	b = jsonstr.Append(b, d.Message)
	b = append(b, `,"request_id":`...)
	b = jsonstr.Append(b, d.RequestID)
	b = append(b, '}')
	return b
}
