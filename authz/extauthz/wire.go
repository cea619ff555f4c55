package extauthz

import (
	"context"
	"errors"
	"slices"
	"time"
	"unicode/utf8"
	"unsafe"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/portcullis-dev/portcullis/authz/engine"
)

// The gRPC server reads CheckRequests and writes the response of an allow itself. The
// generated code decoded the whole message into Go structs (the headers map through
// reflection), allocating every string: 60% of what a cached check allocated, and so most of
// the collector's work, which runs over a heap of 200 MB in a large world. The response,
// built as messages for the codec to marshal, was 6 allocations and 1 KB more. The codec
// copies the message into one buffer, points the request's strings into it, and skips what
// Portcullis does not read; appendOK writes an allow from the decision. A deny, rarer, is
// built and marshalled as before.

// wireCheck is a Check call: its request, read from the wire, and its decision. The
// request's strings point into the copy of the encoded message Unmarshal made, which never
// changes.
type wireCheck struct{ exchange }

// checkCodec is the server's codec: gRPC's proto codec, except for the Check calls of
// authorizationService (wireCheck).
type checkCodec struct{ encoding.CodecV2 }

func newCheckCodec() checkCodec { return checkCodec{encoding.GetCodecV2(proto.Name)} }

func (c checkCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if w, ok := v.(*wireCheck); ok {
		var f httpFields
		// A copy: gRPC reuses data's buffers once Unmarshal returns.
		if err := readCheck(data.Materialize(), &f); err != nil {
			return err
		}
		w.r = f.request()
		return nil
	}
	return c.CodecV2.Unmarshal(data, v)
}

func (c checkCodec) Marshal(v any) (mem.BufferSlice, error) {
	if w, ok := v.(*wireCheck); ok {
		if w.d.Allowed() {
			return mem.BufferSlice{mem.SliceBuffer(appendOK(nil, &w.r, &w.d))}, nil
		}
		v = Response(&w.r, &w.d)
	}
	return c.CodecV2.Marshal(v)
}

// authorizationService is envoy.service.auth.v3.Authorization with a Check handler that
// decodes into a wireCheck. An interceptor, if the server had one, would see the *wireCheck.
var authorizationService = func() grpc.ServiceDesc {
	d := authv3.Authorization_ServiceDesc
	d.Methods = []grpc.MethodDesc{{MethodName: "Check", Handler: checkHandler}}
	return d
}()

func checkHandler(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	w := new(wireCheck)
	if err := dec(w); err != nil {
		return nil, err
	}
	s := srv.(*Server)
	if interceptor == nil {
		return s.checkWire(ctx, w), nil
	}
	info := &grpc.UnaryServerInfo{Server: srv, FullMethod: authv3.Authorization_Check_FullMethodName}
	return interceptor(ctx, w, info, func(ctx context.Context, req any) (any, error) {
		return s.checkWire(ctx, req.(*wireCheck)), nil
	})
}

// checkWire decides w; the codec writes its response (see Marshal).
func (s *Server) checkWire(ctx context.Context, w *wireCheck) *wireCheck {
	s.decide(ctx, &w.exchange, time.Now())
	return w
}

var (
	errWire = errors.New("extauthz: CheckRequest is not valid protobuf")
	errUTF8 = errors.New("extauthz: CheckRequest has a string field that is not UTF-8")
)

// readCheck reads the fields of httpFields from b, an encoded CheckRequest, as proto.Unmarshal
// followed by Convert would: a field given twice keeps its last value, a message given twice
// is merged, a field of an unexpected wire type is ignored as unknown, and a string field
// that is not UTF-8 fails. The strings of f point into b.
//
// It fails where proto.Unmarshal fails on the messages it reads. The messages it skips
// (destination, TLS session, metadata, context extensions...) are checked only for their wire
// format; proto.Unmarshal would also refuse one holding a string that is not UTF-8, which
// Envoy does not send. The tests compare the two (FuzzReadCheck).
func readCheck(b []byte, f *httpFields) error {
	var rd wireReader
	err := eachField(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		if num == 1 && typ == protowire.BytesType { // attributes
			return rd.attributes(v)
		}
		return nil
	})
	if err != nil {
		return err
	}
	*f = rd.f
	if len(rd.headerMap) > 0 {
		f.headers = rd.headerMap
	} else {
		f.headers = rd.mapHeaders
	}
	return nil
}

// wireReader holds what readCheck has read so far.
type wireReader struct {
	f          httpFields
	mapHeaders []engine.Header // the headers map: a key once, with its last value
	headerMap  []engine.Header // header_map, in order
}

func (rd *wireReader) attributes(b []byte) error {
	return eachField(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case 1: // source
			return eachField(v, func(num protowire.Number, typ protowire.Type, v []byte) error {
				if num == 1 && typ == protowire.BytesType { // address
					return rd.address(v)
				}
				return nil
			})
		case 4: // request
			return eachField(v, func(num protowire.Number, typ protowire.Type, v []byte) error {
				if num == 2 && typ == protowire.BytesType { // http
					return rd.http(v)
				}
				return nil
			})
		}
		return nil
	})
}

// address reads a config.core.v3.Address: a oneof, of which only socket_address is read.
// Another member replaces it; socket_address given again is merged into the one before.
func (rd *wireReader) address(b []byte) error {
	return eachField(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case 1: // socket_address
			return eachField(v, func(num protowire.Number, typ protowire.Type, v []byte) error {
				if typ != protowire.BytesType {
					return nil
				}
				switch num {
				case 2: // address
					return str(v, &rd.f.source)
				case 4, 5: // named_port, resolver_name
					return str(v, nil)
				}
				return nil
			})
		case 2, 3: // pipe, envoy_internal_address
			rd.f.source = ""
		}
		return nil
	})
}

// http reads an AttributeContext.HttpRequest.
func (rd *wireReader) http(b []byte) error {
	if rd.headerMap == nil && rd.mapHeaders == nil {
		rd.reserve(b)
	}
	f := &rd.f
	return eachField(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case 2:
			return str(v, &f.method)
		case 3:
			return rd.mapEntry(v)
		case 4:
			return str(v, &f.path)
		case 5:
			return str(v, &f.host)
		case 11:
			return str(v, &f.body)
		case 12:
			f.rawBody = v
		case 13: // header_map
			return eachField(v, func(num protowire.Number, typ protowire.Type, v []byte) error {
				if num == 1 && typ == protowire.BytesType {
					return rd.headerValue(v)
				}
				return nil
			})
		case 1, 6, 7, 8, 10: // id, scheme, query, fragment, protocol
			return str(v, nil)
		}
		return nil
	})
}

// reserve sizes the header lists for the headers of b, an HttpRequest, so that they grow once.
func (rd *wireReader) reserve(b []byte) {
	nMap, nRaw := 0, 0
	_ = eachField(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		switch {
		case typ != protowire.BytesType:
		case num == 3:
			nMap++
		case num == 13:
			_ = eachField(v, func(num protowire.Number, _ protowire.Type, _ []byte) error {
				if num == 1 {
					nRaw++
				}
				return nil
			})
		}
		return nil
	})
	if nRaw > 0 {
		rd.headerMap = make([]engine.Header, 0, nRaw)
	} else if nMap > 0 {
		rd.mapHeaders = make([]engine.Header, 0, nMap)
	}
}

// mapEntry reads an entry of the headers map; a key already there takes the new value.
func (rd *wireReader) mapEntry(b []byte) error {
	h, _, err := keyValue(b, false)
	if err != nil {
		return err
	}
	for i := range rd.mapHeaders {
		if rd.mapHeaders[i].Name == h.Name {
			rd.mapHeaders[i].Value = h.Value
			return nil
		}
	}
	rd.mapHeaders = append(rd.mapHeaders, h)
	return nil
}

// headerValue reads a config.core.v3.HeaderValue: raw_value, when not empty, is the value.
func (rd *wireReader) headerValue(b []byte) error {
	h, raw, err := keyValue(b, true)
	if err != nil {
		return err
	}
	if len(raw) > 0 {
		h.Value = alias(raw)
	}
	rd.headerMap = append(rd.headerMap, h)
	return nil
}

// keyValue reads the key (1) and value (2) strings of b, a map entry or a HeaderValue, and
// when withRaw the bytes of field 3 (HeaderValue.raw_value).
func keyValue(b []byte, withRaw bool) (h engine.Header, raw []byte, err error) {
	err = eachField(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch {
		case num == 1:
			return str(v, &h.Name)
		case num == 2:
			return str(v, &h.Value)
		case num == 3 && withRaw:
			raw = v
		}
		return nil
	})
	return h, raw, err
}

// eachField calls fn with every field of the message b: its number, wire type, and for a
// length-delimited one its contents. It fails where proto.Unmarshal fails on the wire format.
func eachField(b []byte, fn func(num protowire.Number, typ protowire.Type, v []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || num > protowire.MaxValidNumber {
			return errWire
		}
		b = b[n:]
		var v []byte
		if typ == protowire.BytesType {
			v, n = protowire.ConsumeBytes(b)
		} else {
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return errWire
		}
		b = b[n:]
		if err := fn(num, typ, v); err != nil {
			return err
		}
	}
	return nil
}

// str checks that v, a proto3 string field, is UTF-8, and stores it in dst (when not nil)
// without copying it.
func str(v []byte, dst *string) error {
	if !utf8.Valid(v) {
		return errUTF8
	}
	if dst != nil {
		*dst = alias(v)
	}
	return nil
}

// alias is v as a string that shares its memory: v is part of a wireCheck's buffer, which
// never changes.
func alias(v []byte) string {
	if len(v) == 0 {
		return ""
	}
	return unsafe.String(&v[0], len(v))
}

// Field numbers of the messages appendOK writes.
const (
	checkResponseStatus    = 1 // CheckResponse.status (google.rpc.Status)
	checkResponseOK        = 3 // CheckResponse.ok_response (OkHttpResponse)
	okHeaders              = 2 // OkHttpResponse.headers (HeaderValueOption)
	okHeadersToRemove      = 5 // OkHttpResponse.headers_to_remove
	headerOptionHeader     = 1 // HeaderValueOption.header (HeaderValue)
	headerOptionAppend     = 3 // HeaderValueOption.append_action
	headerValueKey         = 1 // HeaderValue.key
	headerValueValue       = 2 // HeaderValue.value
	overwriteIfExistsOrAdd = 2 // HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD
)

// appendOK appends the encoding of Response(r, d) for an allowed d, as proto.Marshal writes
// it: an OK status, the upstream headers with overwrite semantics and the headers to remove.
// b is grown once, to the exact size.
func appendOK(b []byte, r *engine.Request, d *engine.Decision) []byte {
	var arr [8]string
	remove := appendHeadersToRemove(arr[:0], r, d)
	ok := 0
	for _, h := range d.Upstream {
		ok += protowire.SizeTag(okHeaders) + protowire.SizeBytes(headerOptionSize(h))
	}
	for _, n := range remove {
		ok += protowire.SizeTag(okHeadersToRemove) + protowire.SizeBytes(len(n))
	}
	size := protowire.SizeTag(checkResponseStatus) + protowire.SizeBytes(0) +
		protowire.SizeTag(checkResponseOK) + protowire.SizeBytes(ok)
	b = slices.Grow(b, size)

	b = protowire.AppendTag(b, checkResponseStatus, protowire.BytesType)
	b = protowire.AppendVarint(b, 0) // code OK, the default: an empty Status
	b = protowire.AppendTag(b, checkResponseOK, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(ok))
	for _, h := range d.Upstream {
		b = protowire.AppendTag(b, okHeaders, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(headerOptionSize(h)))
		b = protowire.AppendTag(b, headerOptionHeader, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(headerValueSize(h)))
		b = appendString(b, headerValueKey, h.Name)
		b = appendString(b, headerValueValue, h.Value)
		b = protowire.AppendTag(b, headerOptionAppend, protowire.VarintType)
		b = protowire.AppendVarint(b, overwriteIfExistsOrAdd)
	}
	for _, n := range remove {
		b = protowire.AppendTag(b, okHeadersToRemove, protowire.BytesType)
		b = protowire.AppendString(b, n)
	}
	return b
}

func headerValueSize(h engine.Header) int {
	return stringSize(headerValueKey, h.Name) + stringSize(headerValueValue, h.Value)
}

func headerOptionSize(h engine.Header) int {
	return protowire.SizeTag(headerOptionHeader) + protowire.SizeBytes(headerValueSize(h)) +
		protowire.SizeTag(headerOptionAppend) + protowire.SizeVarint(overwriteIfExistsOrAdd)
}

// stringSize and appendString handle a singular proto3 string field: absent when empty.
func stringSize(num protowire.Number, s string) int {
	if s == "" {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeBytes(len(s))
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}
