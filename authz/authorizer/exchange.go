package authorizer

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"

	authv1alpha1 "github.com/portcullis-dev/portcullis/api/v1alpha1"
	"github.com/portcullis-dev/portcullis/authz/compile"
	"github.com/portcullis-dev/portcullis/internal/jsonstr"
)

// encodeEvent renders the request body of DESIGN.md §4 for c, byte for byte as encoding/json
// renders it (the oracle of the tests): the members in the order below, map keys sorted,
// strings escaped alike (<, > and & as they are; control characters, U+2028 and U+2029
// escaped; invalid UTF-8 as \ufffd), and a newline at the end. It appends to one buffer
// sized for the event instead of filling maps for encoding/json to reflect over.
//
// Only the identity-source headers, query parameters and cookies are sent; Method and Path
// sources are the event's httpMethod and path.
func encodeEvent(c *Call) []byte {
	a := c.Authorizer
	n := 256 + len(c.Method) + len(c.Path) + len(a.UserData) + len(c.RequestID) + len(c.Binding.Ref)
	for i, s := range a.IdentitySources {
		n += len(s.Name) + len(c.Identity[i]) + 6
	}
	if a.SendBody {
		n += base64.StdEncoding.EncodedLen(len(c.Body))
	}
	cr := c.Credential
	if cr != nil {
		n += len(cr.Ref)
		for k, v := range cr.Metadata() {
			n += len(k) + len(v) + 6
		}
	}
	b := make([]byte, 0, n)
	b = append(b, `{"httpMethod":`...)
	b = jsonstr.Append(b, c.Method)
	b = append(b, `,"path":`...)
	b = jsonstr.Append(b, c.Path)
	b = append(b, `,"headers":`...)
	b = appendSources(b, a, c.Identity, authv1alpha1.IdentityHeader)
	b = append(b, `,"queryStringParameters":`...)
	b = appendSources(b, a, c.Identity, authv1alpha1.IdentityQuery)
	b = append(b, `,"cookies":`...)
	b = appendSources(b, a, c.Identity, authv1alpha1.IdentityCookie)
	b = append(b, `,"user_data":`...)
	b = jsonstr.Append(b, a.UserData)
	if a.SendBody {
		b = append(b, `,"body":"`...)
		b = base64.StdEncoding.AppendEncode(b, c.Body)
		b = append(b, `","isBase64Encoded":true`...)
	} else {
		b = append(b, `,"isBase64Encoded":false`...)
	}
	b = append(b, `,"requestContext":{"requestId":`...)
	b = jsonstr.Append(b, c.RequestID)
	b = append(b, `,"sourceIp":`...)
	switch src := c.Source; {
	case !src.IsValid():
		b = append(b, `""`...)
	case src.Zone() != "": // a zone may hold any character
		b = jsonstr.Append(b, src.String())
	default:
		b = append(b, '"')
		b = src.AppendTo(b)
		b = append(b, '"')
	}
	b = append(b, `,"binding":`...)
	b = jsonstr.Append(b, c.Binding.Ref)
	if cr != nil {
		if cr.Ref != "" {
			b = append(b, `,"credential":`...)
			b = jsonstr.Append(b, cr.Ref)
		}
		if md := cr.Metadata(); len(md) > 0 {
			b = append(b, `,"credentialMetadata":`...)
			b = appendStringMap(b, md)
		}
	}
	return append(b, "}}\n"...)
}

// appendSources appends the JSON object of the identity sources found in in, by name. A name
// given twice sends its last value, as a map assignment would.
func appendSources(b []byte, a *compile.Authorizer, ids []string, in authv1alpha1.IdentityLocation) []byte {
	srcs := a.IdentitySources
	var arr [8]int
	sel := arr[:0]
	for i := range srcs {
		if srcs[i].In == in {
			sel = append(sel, i)
		}
	}
	slices.SortStableFunc(sel, func(x, y int) int { return strings.Compare(srcs[x].Name, srcs[y].Name) })
	b = append(b, '{')
	for j, i := range sel {
		if j+1 < len(sel) && srcs[sel[j+1]].Name == srcs[i].Name {
			continue // a later source of this name wins
		}
		if b[len(b)-1] != '{' {
			b = append(b, ',')
		}
		b = jsonstr.Append(b, srcs[i].Name)
		b = append(b, ':')
		b = jsonstr.Append(b, ids[i])
	}
	return append(b, '}')
}

// appendStringMap appends m as a JSON object with its keys sorted.
func appendStringMap(b []byte, m map[string]string) []byte {
	var arr [16]string
	keys := arr[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonstr.Append(b, k)
		b = append(b, ':')
		b = jsonstr.Append(b, m[k])
	}
	return append(b, '}')
}

// exchange POSTs body to the authorizer and reads its verdict; ctx bounds the whole
// exchange, reading the answer included.
func (cl *Client) exchange(ctx context.Context, a *compile.Authorizer, body []byte) (Result, *Error) {
	res, err := cl.roundTrip(ctx, a, body)
	if err != nil {
		cl.calls[err.outcome()].Add(1)
		return Result{}, err
	}
	if res.Allow {
		cl.calls[oAllow].Add(1)
	} else {
		cl.calls[oDeny].Add(1)
	}
	return res, nil
}

// roundTrip calls the transport itself, not an http.Client: the client would parse the URL
// again, copy the headers for redirects it must not follow, and wrap errors with the URL.
func (cl *Client) roundTrip(ctx context.Context, a *compile.Authorizer, body []byte) (Result, *Error) {
	req := (&http.Request{
		Method:        http.MethodPost,
		URL:           a.URL, // read only, as a RoundTripper must treat its request
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{"Content-Type": jsonType, "Accept": jsonType, "User-Agent": userAgent},
		Body:          newEventBody(body),
		ContentLength: int64(len(body)),
		Host:          strings.TrimSuffix(a.URL.Host, ":"), // as http.NewRequest sets it
	}).WithContext(ctx)
	resp, err := cl.rt.RoundTrip(req)
	if err != nil {
		return Result{}, transportError(ctx, a, err)
	}
	defer resp.Body.Close()
	switch code := resp.StatusCode; {
	case code >= 300 && code < 400:
		return Result{}, statusError(ReasonRedirect, code)
	case code != http.StatusOK:
		// Read a little so the connection can be reused, within the deadline.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return Result{}, statusError(ReasonStatus, code)
	}
	if resp.ContentLength > cl.maxBytes {
		return Result{}, cl.oversize()
	}
	bp := answerBufs.Get().(*[]byte)
	defer putAnswerBuf(bp)
	buf, err := readAnswer(resp.Body, (*bp)[:0], cl.maxBytes+1)
	*bp = buf
	if err != nil {
		return Result{}, transportError(ctx, a, err)
	}
	if int64(len(buf)) > cl.maxBytes {
		return Result{}, cl.oversize()
	}
	allow, kvs, perr := parseAnswer(a.ResponseFormat, buf) // copies what it keeps
	if perr != nil {
		return Result{}, perr
	}
	return Result{Allow: allow, Context: kvs}, nil
}

// The values of the request headers, shared by every request: a transport only reads them,
// and adding a value to a header of one request copies its slice.
var (
	jsonType  = []string{"application/json"}
	userAgent = []string{"portcullis"}
)

// eventBody is the request body: a bytes.Reader that closes, in one allocation (the reader
// is held by value, not pointed to).
type eventBody struct{ bytes.Reader }

func newEventBody(b []byte) *eventBody {
	e := new(eventBody)
	e.Reset(b)
	return e
}

func (*eventBody) Close() error { return nil }

// answerBufs holds the buffers answers are read into. Most answers are small; a buffer that
// grew past maxPooledAnswer for a large one is let go.
var answerBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

const maxPooledAnswer = 64 << 10

func putAnswerBuf(bp *[]byte) {
	if cap(*bp) <= maxPooledAnswer {
		answerBufs.Put(bp)
	}
}

// readAnswer appends what r has to b until the end or until b holds limit bytes.
func readAnswer(r io.Reader, b []byte, limit int64) ([]byte, error) {
	for int64(len(b)) < limit {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		end := cap(b)
		if int64(end) > limit {
			end = int(limit)
		}
		n, err := r.Read(b[len(b):end])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
	return b, nil
}

func (cl *Client) oversize() *Error {
	msg := "authorizer answer exceeds " + strconv.FormatInt(cl.maxBytes, 10) + " bytes"
	return failf(ReasonOversize, errors.New(msg), msg)
}

// transportError classifies a failed exchange: the deadline (ours, or a network timeout
// other than dialing) is a timeout, anything else (refused, reset, DNS, TLS, dial timeout)
// unreachable. The message never carries the URL.
func transportError(ctx context.Context, a *compile.Authorizer, err error) *Error {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" && ctx.Err() == nil {
		return failf(ReasonUnreachable, err, "authorizer is unreachable")
	}
	var ne net.Error
	if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return failf(ReasonTimeout, err, "authorizer did not answer within "+a.Timeout.String())
	}
	return failf(ReasonUnreachable, err, "authorizer is unreachable")
}

func sourceIP(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}
