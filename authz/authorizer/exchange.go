package authorizer

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"

	authv1alpha1 "github.com/portcullis-dev/portcullis/api/v1alpha1"
	"github.com/portcullis-dev/portcullis/authz/compile"
)

// event is the request body of DESIGN.md §4.
type event struct {
	HTTPMethod      string            `json:"httpMethod"`
	Path            string            `json:"path"`
	Headers         map[string]string `json:"headers"`
	Query           map[string]string `json:"queryStringParameters"`
	Cookies         map[string]string `json:"cookies"`
	UserData        string            `json:"user_data"`
	Body            *string           `json:"body,omitempty"`
	IsBase64Encoded bool              `json:"isBase64Encoded"`
	RequestContext  requestContext    `json:"requestContext"`
}

type requestContext struct {
	RequestID          string            `json:"requestId"`
	SourceIP           string            `json:"sourceIp"`
	Binding            string            `json:"binding"`
	Credential         string            `json:"credential,omitempty"`
	CredentialMetadata map[string]string `json:"credentialMetadata,omitempty"`
}

// encodeEvent renders the event of c. Only the identity-source headers, query parameters and
// cookies are sent; Method and Path sources are the event's httpMethod and path.
func encodeEvent(c *Call) ([]byte, error) {
	a := c.Authorizer
	ev := event{
		HTTPMethod: c.Method,
		Path:       c.Path,
		Headers:    map[string]string{},
		Query:      map[string]string{},
		Cookies:    map[string]string{},
		UserData:   a.UserData,
		RequestContext: requestContext{
			RequestID: c.RequestID,
			SourceIP:  sourceIP(c.Source),
			Binding:   c.Binding.Ref,
		},
	}
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
	n := 512 + len(a.UserData)
	for _, v := range c.Identity {
		n += len(v)
	}
	if a.SendBody {
		n += base64.StdEncoding.EncodedLen(len(c.Body))
	}
	buf.Grow(n)
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(&ev); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
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

func (cl *Client) roundTrip(ctx context.Context, a *compile.Authorizer, body []byte) (Result, *Error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.URL.String(), bytes.NewReader(body))
	if err != nil {
		return Result{}, failf(ReasonInvalid, err, "authorizer request cannot be built")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "portcullis")
	resp, err := cl.hc.Do(req)
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
	n := int64(512)
	if resp.ContentLength > 0 {
		n = resp.ContentLength + 1
	}
	buf := bytes.NewBuffer(make([]byte, 0, n))
	if _, err := buf.ReadFrom(io.LimitReader(resp.Body, cl.maxBytes+1)); err != nil {
		return Result{}, transportError(ctx, a, err)
	}
	if int64(buf.Len()) > cl.maxBytes {
		return Result{}, cl.oversize()
	}
	allow, kvs, perr := parseAnswer(a.ResponseFormat, buf.Bytes())
	if perr != nil {
		return Result{}, perr
	}
	return Result{Allow: allow, Context: kvs}, nil
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
