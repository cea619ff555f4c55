package controllers

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/go-logr/logr"
	yamlv3 "go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"
	kjson "sigs.k8s.io/json"
	sigsyaml "sigs.k8s.io/yaml"

	authv1alpha1 "github.com/portcullis-dev/portcullis/api/v1alpha1"
)

// fileKinds are the kinds a policy directory may hold, with a constructor for each.
var fileKinds = map[schema.GroupVersionKind]func() client.Object{
	authv1alpha1.GroupVersion.WithKind("Credential"):       func() client.Object { return &authv1alpha1.Credential{} },
	authv1alpha1.GroupVersion.WithKind("CustomAuthorizer"): func() client.Object { return &authv1alpha1.CustomAuthorizer{} },
	authv1alpha1.GroupVersion.WithKind("APIBinding"):       func() client.Object { return &authv1alpha1.APIBinding{} },
	corev1.SchemeGroupVersion.WithKind("Secret"):           func() client.Object { return &corev1.Secret{} },
}

// fileTypeMeta is the apiVersion and kind of each of fileKinds, as strings every object of
// the kind shares.
var fileTypeMeta = func() map[schema.GroupVersionKind]metav1.TypeMeta {
	m := map[schema.GroupVersionKind]metav1.TypeMeta{}
	for gvk := range fileKinds {
		apiVersion, kind := gvk.ToAPIVersionAndKind()
		m[gvk] = metav1.TypeMeta{APIVersion: apiVersion, Kind: kind}
	}
	return m
}()

// wantKinds names fileKinds for error messages.
const wantKinds = "auth.portcullis.dev/v1alpha1 Credential, CustomAuthorizer or APIBinding, or v1 Secret"

// listGVK is kubectl's generic list: its items are loaded as if each were its own document.
var listGVK = corev1.SchemeGroupVersion.WithKind("List")

// fileEpoch is the creation time of the first object loaded from a directory; each later
// object is one second younger.
var fileEpoch = time.Date(2000, time.January, 1, 0, 0, 0, 0, time.UTC)

// LoadError is one problem found in a policy directory, placed at the file and line a
// person opens in an editor.
type LoadError struct {
	// File is the path of the file: the directory as given, joined with the file name.
	File string
	// Line is 1-based: the offending field when it can be found, else the first line of
	// the object's document; 0 when the problem concerns the whole file.
	Line int
	// Object names the object as `Kind "namespace/name"`, or `Kind "name"` when the
	// document sets no namespace; empty when the document could not be identified.
	Object string
	// Err says what is wrong.
	Err error
}

// Error renders the problem as "file:line: Kind \"ns/name\": what is wrong".
func (e *LoadError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":")
		b.WriteString(strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Object != "" {
		b.WriteString(e.Object)
		b.WriteString(": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

// Unwrap returns what is wrong.
func (e *LoadError) Unwrap() error { return e.Err }

// LoadDir reads the policy directory dir: every *.yaml, *.yml and *.json file directly in it
// (hidden files, editor backups and subdirectories are skipped), in lexical order, each
// possibly holding several YAML documents or a v1 List. Every document must be an
// auth.portcullis.dev/v1alpha1 Credential, CustomAuthorizer or APIBinding, or a v1 Secret,
// and is decoded strictly: unknown kinds, unknown or duplicate fields, bad base64 and
// invalid names are errors, and so is a second object with the kind, namespace and name of
// an earlier one.
//
// The objects come back in load order (files sorted, documents in file order), filled in as
// the API server would have created them, deterministically: namespace "default" when
// none is set; Secret stringData merged into data (stringData wins) and cleared; status,
// uid, resourceVersion, generation, creationTimestamp and deletionTimestamp set by the file
// replaced. The UID is a hash of group, kind, namespace and name, so it survives edits and
// moves; the generation is 1; creationTimestamp is 2000-01-01T00:00:00Z plus one second per
// object before it in load order, so an object earlier in the directory is older; and
// resourceVersion is a hash of the object's canonical JSON (keys sorted, as YAML becomes
// JSON), its place in load order and its generation, so it changes whenever the object
// does (including when its creationTimestamp moves because objects were added or removed
// earlier in the directory) and not for comments or formatting. CRD defaults are not
// applied.
//
// Credentials with equal labels or spec.metadata share the map: the objects are read-only.
//
// On any problem LoadDir returns no objects and an error joining one *LoadError per
// problem, each naming its file and line.
func LoadDir(dir string) ([]client.Object, error) {
	var objs []client.Object
	err := loadDir(dir, func(docs int) { objs = make([]client.Object, 0, docs) }, func(i int, o *fileObject) {
		o.setGeneration(int64(i), 1)
		objs = append(objs, o.obj)
	})
	if err != nil {
		return nil, err
	}
	return objs, nil
}

// fileObject is an object LoadDir returns, with what the file source remembers of it.
type fileObject struct {
	obj client.Object
	uid [16]byte // the UID's bytes: group, kind, namespace and name hashed
	// content hashes the object's canonical JSON as written; spec hashes the same JSON
	// without metadata and status: what a generation counts changes of.
	content, spec [16]byte
}

// setGeneration sets the generation and the resourceVersion, a hash of the content, the
// place in load order (which sets the creationTimestamp) and the generation.
func (o *fileObject) setGeneration(index, gen int64) {
	o.obj.SetGeneration(gen)
	var b [len(o.content) + 16]byte
	copy(b[:], o.content[:])
	binary.LittleEndian.PutUint64(b[len(o.content):], uint64(index))
	binary.LittleEndian.PutUint64(b[len(o.content)+8:], uint64(gen))
	sum := sha256.Sum256(b[:])
	o.obj.SetResourceVersion(hex.EncodeToString(sum[:8]))
}

// loadDir reads the policy directory dir as LoadDir describes, and hands each object to
// keep with its place in load order, filled in but for its generation and resourceVersion
// (see fileObject.setGeneration), as soon as the objects before it are known. keep may
// convert the object and drop it: the decoded objects of a large directory are then never
// all held at once. keep is called one object at a time, from the decoding goroutines, and no
// more once a problem is found; when loadDir returns an error, all that keep was given must
// be discarded. Before the first call of keep, reserve (if not nil) is told how many
// documents the directory has: as many objects as will be kept, or more, but for Lists.
func loadDir(dir string, reserve func(docs int), keep func(i int, o *fileObject)) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("read policy directory: %w", err)
	}
	var files []manifestFile
	var errs []*LoadError
	for _, entry := range entries {
		if !isManifestName(entry.Name()) {
			continue
		}
		path := filepath.Join(dir, entry.Name())
		// Stat, not entry.Type: a ConfigMap volume presents its files as symlinks.
		info, err := os.Stat(path)
		if err != nil {
			errs = append(errs, &LoadError{File: path, Err: unwrapPathError(err)})
			continue
		}
		if !info.Mode().IsRegular() {
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			errs = append(errs, &LoadError{File: path, Err: unwrapPathError(err)})
			continue
		}
		files = append(files, manifestFile{path: path, data: bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))})
	}
	// Split the files on all CPUs too: a large one takes a while.
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for i := range files {
		sem <- struct{}{}
		wg.Go(func() {
			files[i].docs = splitDocuments(files[i].data)
			<-sem
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		keep = nil
	} else if reserve != nil {
		docs := 0
		for _, f := range files {
			docs += len(f.docs)
		}
		reserve(docs)
	}
	if errs = append(errs, loadDocuments(files, keep)...); len(errs) > 0 {
		joined := make([]error, len(errs))
		for i, e := range errs {
			joined[i] = e
		}
		return errors.Join(joined...)
	}
	return nil
}

// manifestFile is one file of a policy directory, split into its documents.
type manifestFile struct {
	path string
	data []byte
	docs []document // data split
}

// seenAt is where an object was first defined: the index of its file and its line.
type seenAt struct{ file, line int32 }

// loadDocuments decodes every document of the files, on all CPUs (YAML decoding is most of
// the time a large directory takes to load), and finishes the objects in load order as the
// runs of documents before them are decoded: it refuses duplicates, sets each object's
// creationTimestamp, makes equal maps shared, and hands it to keep (see loadDir; nil keeps
// nothing). It returns each file's problems top to bottom.
func loadDocuments(files []manifestFile, keep func(i int, o *fileObject)) []*LoadError {
	// Workers take runs of documents (never across files), each run with its own loader,
	// so that the results come back in order without a loader per document.
	const run = 64
	type job struct {
		file    string
		fileAt  int32 // its index in files
		docs    []document
		out     loader
		last    *manifestFile // the file whose last documents these are
		decoded bool          // under mu
	}
	var jobs []job
	n := 0
	for fi := range files {
		f := &files[fi]
		n += len(f.docs)
		for i := 0; i < len(f.docs); i += run {
			jobs = append(jobs, job{file: f.path, fileAt: int32(fi), docs: f.docs[i:min(i+run, len(f.docs))]})
		}
		if len(f.docs) > 0 {
			jobs[len(jobs)-1].last = f
		}
	}

	// The finishing state, used by one goroutine at a time: the one that set finishing.
	var (
		errs      []*LoadError
		fileStart int    // where the current file's problems start in errs
		file      string // the current file
		index     int    // the next object's place in load order
		shared    sharedMetadata
		// The UID hashes group, kind, namespace and name: the identity the API server knows
		// an object by. Each is kept with where it was first defined, as 8 bytes: the map
		// holds every object of the directory until the load ends.
		seen = make(map[[16]byte]seenAt, n)
	)
	finish := func(j *job) {
		if j.file != file {
			slices.SortStableFunc(errs[fileStart:], func(a, b *LoadError) int { return cmp.Compare(a.Line, b.Line) })
			fileStart, file = len(errs), j.file
		}
		errs = append(errs, j.out.errs...)
		for k := range j.out.objs {
			o := &j.out.objs[k]
			if first, dup := seen[o.uid]; dup {
				errs = append(errs, &LoadError{File: o.at.file, Line: o.at.line, Object: o.head.label(),
					Err: fmt.Errorf("duplicate object, already defined at %s:%d", files[first.file].path, first.line)})
				continue
			}
			seen[o.uid] = seenAt{file: j.fileAt, line: int32(o.at.line)}
			if keep != nil && len(errs) == 0 {
				o.obj.SetCreationTimestamp(metav1.NewTime(fileEpoch.Add(time.Duration(index) * time.Second)))
				shared.share(o.obj)
				keep(index, &o.fileObject)
			}
			index++
		}
		// What keep did not keep is garbage now, and so is a file once its last documents
		// are finished: a large directory's files need not all be held until the end.
		j.out, j.docs = loader{}, nil
		if j.last != nil {
			j.last.data, j.last.docs = nil, nil
		}
	}

	var (
		mu        sync.Mutex
		next      int  // the first job not finished
		finishing bool // a goroutine is finishing jobs
		claim     atomic.Int64
		wg        sync.WaitGroup
	)
	for range min(runtime.GOMAXPROCS(0), max(len(jobs), 1)) {
		wg.Go(func() {
			var names nameArena // this goroutine's: the objects' names
			for i := int(claim.Add(1) - 1); i < len(jobs); i = int(claim.Add(1) - 1) {
				j := &jobs[i]
				j.out.objs = make([]loaded, 0, len(j.docs))
				j.out.names = &names
				for _, d := range j.docs {
					j.out.loadDocument(j.file, d)
				}
				j.out.maps, j.out.json, j.out.names = nil, nil, nil

				// Finish every decoded job from next on, unless another goroutine is at it:
				// it will find this one decoded when it gets there.
				mu.Lock()
				j.decoded = true
				if !finishing {
					finishing = true
					for next < len(jobs) && jobs[next].decoded {
						mu.Unlock()
						finish(&jobs[next])
						mu.Lock()
						next++
					}
					finishing = false
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.SortStableFunc(errs[fileStart:], func(a, b *LoadError) int { return cmp.Compare(a.Line, b.Line) })
	return errs
}

// isManifestName reports whether LoadDir reads a file of this name: a YAML or JSON file that
// is neither hidden (which also skips Emacs locks ".#x", Vim swap files ".x.swp" and the
// "..data" entries of ConfigMap volumes) nor an editor backup.
func isManifestName(name string) bool {
	if strings.HasPrefix(name, ".") || strings.HasSuffix(name, "~") {
		return false
	}
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}

func unwrapPathError(err error) error {
	var pathErr *os.PathError
	if errors.As(err, &pathErr) {
		return pathErr.Err
	}
	return err
}

// place is where an object was defined.
type place struct {
	file string
	line int
}

// loader accumulates the objects and problems of one document (several for a List).
type loader struct {
	objs  []loaded
	errs  []*LoadError
	maps  sharedMaps // see fastDecode
	names *nameArena // see fastDecode; nil for none
	json  []byte     // see loadDocument
}

// loaded is an object decoded from a document, and where.
type loaded struct {
	fileObject
	at   place
	head objectHead // names the object in errors (see label)
}

func (l *loader) fail(err *LoadError) { l.errs = append(l.errs, err) }

// document is one YAML document of a file: 32 bytes, as a large directory has 200,000.
type document struct {
	text []byte // the document, without its separators
	// start is the line of the document's first line in the file. A file of more than 2^31
	// lines would take longer to load than any reader waits.
	start int32
	// contentAfterSeparator: the separator that opened it has content after it.
	contentAfterSeparator bool
}

// errContentAfterSeparator is the problem of a document whose separator has content after it.
var errContentAfterSeparator = errors.New("content after the document separator is not supported (start the document on the next line)")

// firstLine is the line of the document's first content: neither blank, nor a comment, nor
// a directive. It is where a person looks for the object.
func (d document) firstLine() int {
	text := d.text
	for n := int(d.start); len(text) > 0; n++ {
		line := text
		if i := bytes.IndexByte(text, '\n'); i >= 0 {
			line, text = text[:i], text[i+1:]
		} else {
			text = nil
		}
		line = bytes.TrimSpace(line)
		if len(line) > 0 && line[0] != '#' && line[0] != '%' {
			return n
		}
	}
	return int(d.start)
}

// lastLine is the line of the document's last line in the file.
func (d document) lastLine() int {
	n := bytes.Count(d.text, []byte("\n"))
	if n > 0 && d.text[len(d.text)-1] == '\n' {
		n--
	}
	return int(d.start) + n
}

// splitDocuments splits a file at its "---" (and "...") lines, keeping each document's
// starting line so errors can be placed in the file. The documents share data.
func splitDocuments(data []byte) []document {
	// Room for every document up front: growing a slice of 100,000 costs more than the split.
	docs := make([]document, 0, 2+bytes.Count(data, []byte("\n---"))+bytes.Count(data, []byte("\n...")))
	cur := document{start: 1}
	begin := 0 // where cur's text begins in data
	for i, lineNo := 0, 0; i < len(data); lineNo++ {
		end := len(data)
		if n := bytes.IndexByte(data[i:], '\n'); n >= 0 {
			end = i + n + 1
		}
		if c := data[i]; c != '-' && c != '.' { // not a separator: most lines
			i = end
			continue
		}
		trimmed := bytes.TrimRight(data[i:end], " \t\r\n")
		isSep := string(trimmed) == "---" || string(trimmed) == "..." ||
			bytes.HasPrefix(trimmed, []byte("--- ")) || bytes.HasPrefix(trimmed, []byte("---\t"))
		if isSep {
			cur.text = data[begin:i:i]
			docs = append(docs, cur)
			cur, begin = document{start: int32(lineNo + 2)}, end
			if rest := bytes.TrimSpace(trimmed[3:]); len(rest) > 0 && rest[0] != '#' {
				// Not quoted back: whatever was pasted there may be a secret.
				cur.start, cur.contentAfterSeparator = int32(lineNo+1), true
			}
		}
		i = end
	}
	cur.text = data[begin:len(data):len(data)]
	return append(docs, cur)
}

// loadDocument loads one document of a file.
func (l *loader) loadDocument(file string, doc document) {
	if doc.contentAfterSeparator {
		l.fail(&LoadError{File: file, Line: int(doc.start), Err: errContentAfterSeparator})
		return
	}
	// Most documents are plain enough for the fast converter; the rest, and every error, go
	// through sigs.k8s.io/yaml, as kubectl reads them.
	// The JSON is read, never kept: one buffer serves every document of the loader.
	j, ok := fastYAMLToJSON(l.json[:0], doc.text)
	if ok {
		l.json = j
	}
	var err error
	if !ok {
		j, err = sigsyaml.YAMLToJSONStrict(doc.text)
	}
	if err != nil {
		line, msg := yamlErrorLine(err)
		if line > 0 {
			// The parser places an error at the end of the input on the line after it.
			line = min(line+int(doc.start)-1, doc.lastLine())
		} else {
			line = doc.firstLine()
		}
		l.fail(&LoadError{File: file, Line: line, Err: fmt.Errorf("invalid YAML: %s", msg)})
		return
	}
	if j = bytes.TrimSpace(j); string(j) == "null" {
		return // empty, or comments only
	}
	l.loadObject(j, position{file: file, line: doc.firstLine(), offset: int(doc.start) - 1, text: doc.text})
}

var yamlLineRE = regexp.MustCompile(`line (\d+): ([^\n]*)`)

// yamlErrorLine finds the (document-relative) line a YAML error names, with its message.
func yamlErrorLine(err error) (int, string) {
	msg := strings.TrimPrefix(err.Error(), "error converting YAML to JSON: ")
	msg = strings.TrimPrefix(msg, "yaml: ")
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n, m[2]
	}
	return 0, msg
}

// position places an object's fields in its file.
type position struct {
	file string
	line int // the object's own line
	// The object's YAML mapping: node when it is parsed already (an item of a List), else
	// parsed from text each time a problem needs a field's line (rarely: not worth keeping).
	node   *yamlv3.Node
	text   []byte
	offset int // added to node lines to make them file lines
}

// at is the line of the field at path ("spec.routes[1].path"), else the object's line.
func (p position) at(path string) int {
	if m := findNodes(p.tree(), path); len(m) > 0 {
		return p.offset + m[0].key.Line
	}
	return p.line
}

// lineOf is the line of the field a strict decoding error names, else the object's line.
func (p position) lineOf(strictErr error) int {
	var fieldErr kjson.FieldError
	if errors.As(strictErr, &fieldErr) {
		return p.at(fieldErr.FieldPath())
	}
	return p.line
}

// tree returns the object's YAML mapping; nil when it cannot be parsed.
func (p position) tree() *yamlv3.Node {
	if p.node != nil || p.text == nil {
		return p.node
	}
	var root yamlv3.Node
	if yamlv3.Unmarshal(p.text, &root) != nil {
		return nil
	}
	return deref(&root)
}

// atWrongType is the line of the field at path (which has no list indexes) whose value
// does not look like a t; the object's line when there is no such field.
func (p position) atWrongType(path string, t reflect.Type) int {
	matches := findNodes(p.tree(), path)
	for _, m := range matches {
		if wrongType(m.value, t) {
			return p.offset + m.key.Line
		}
	}
	if len(matches) > 0 {
		return p.offset + matches[0].key.Line
	}
	return p.line
}

// item is the position of the element of a list at path.
func (p position) item(path string) position {
	if m := findNodes(p.tree(), path); len(m) > 0 {
		item := deref(m[0].value)
		return position{file: p.file, line: p.offset + m[0].key.Line, node: item, offset: p.offset}
	}
	return position{file: p.file, line: p.line, offset: p.offset}
}

// nodeMatch is a field found in a YAML tree: the node to point at, and its value.
type nodeMatch struct{ key, value *yamlv3.Node }

func deref(n *yamlv3.Node) *yamlv3.Node {
	for n != nil {
		switch {
		case n.Kind == yamlv3.DocumentNode && len(n.Content) > 0:
			n = n.Content[0]
		case n.Kind == yamlv3.AliasNode:
			n = n.Alias
		default:
			return n
		}
	}
	return nil
}

// findNodes walks a field path such as "spec.routes[1].path" or "data.tls.crt" (map keys
// may hold dots: the longest key that fits wins). A path that crosses a list without an
// index, as in encoding/json type errors, matches in every element.
func findNodes(n *yamlv3.Node, path string) []nodeMatch {
	n = deref(n)
	switch {
	case n == nil:
		return nil
	case path == "":
		return []nodeMatch{{n, n}}
	case path[0] == '[':
		end := strings.IndexByte(path, ']')
		if end < 0 || n.Kind != yamlv3.SequenceNode {
			return nil
		}
		i, err := strconv.Atoi(path[1:end])
		if err != nil || i < 0 || i >= len(n.Content) {
			return nil
		}
		rest := strings.TrimPrefix(path[end+1:], ".")
		if rest == "" {
			return []nodeMatch{{n.Content[i], n.Content[i]}}
		}
		return findNodes(n.Content[i], rest)
	case n.Kind == yamlv3.MappingNode:
		best := -1
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			if path == k || strings.HasPrefix(path, k+".") || strings.HasPrefix(path, k+"[") {
				if best < 0 || len(k) > len(n.Content[best].Value) {
					best = i
				}
			}
		}
		if best < 0 {
			return nil
		}
		rest := strings.TrimPrefix(path[len(n.Content[best].Value):], ".")
		if rest == "" {
			return []nodeMatch{{n.Content[best], n.Content[best+1]}}
		}
		return findNodes(n.Content[best+1], rest)
	case n.Kind == yamlv3.SequenceNode:
		var out []nodeMatch
		for _, c := range n.Content {
			out = append(out, findNodes(c, path)...)
		}
		return out
	}
	return nil
}

// wrongType reports whether a YAML value cannot decode into a Go value of type t.
func wrongType(v *yamlv3.Node, t reflect.Type) bool {
	v = deref(v)
	if v == nil || t == nil || v.Tag == "!!null" {
		return false
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return v.Kind != yamlv3.ScalarNode
		}
		return v.Kind != yamlv3.SequenceNode
	case reflect.Array:
		return v.Kind != yamlv3.SequenceNode
	case reflect.Map, reflect.Struct:
		return v.Kind != yamlv3.MappingNode
	case reflect.String:
		return v.Kind != yamlv3.ScalarNode || v.Tag != "!!str"
	case reflect.Bool:
		return v.Kind != yamlv3.ScalarNode || v.Tag != "!!bool"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return v.Kind != yamlv3.ScalarNode || (v.Tag != "!!int" && v.Tag != "!!float")
	}
	return false
}

// jsonTypeName names a Go type as the JSON a person would write for it.
func jsonTypeName(t reflect.Type) string {
	if t == nil {
		return "a different type"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return "base64 string"
		}
		return "list"
	case reflect.Array:
		return "list"
	case reflect.Map, reflect.Struct:
		return "object"
	}
	return t.String()
}

// objectLabel names an object in errors, as written in the file.
func objectLabel(kind, namespace, name string) string {
	switch {
	case kind == "":
		return ""
	case name == "":
		return kind
	case namespace == "":
		return fmt.Sprintf("%s %q", kind, name)
	}
	return fmt.Sprintf("%s %q", kind, namespace+"/"+name)
}

// loadObject decodes one object (a document, or an item of a List) from its JSON.
func (l *loader) loadObject(j []byte, pos position) {
	if len(j) == 0 || j[0] != '{' {
		l.fail(&LoadError{File: pos.file, Line: pos.line, Err: errors.New("document is not an object")})
		return
	}
	// A lenient first look, to name the object in errors and pick its type.
	head := readHead(j)
	fail := func(line int, err error) {
		l.fail(&LoadError{File: pos.file, Line: line, Object: head.label(), Err: err})
	}
	if head.APIVersion == "" || head.Kind == "" {
		fail(pos.line, fmt.Errorf("apiVersion and kind are required; want %s", wantKinds))
		return
	}
	gv, err := schema.ParseGroupVersion(head.APIVersion)
	if err != nil {
		fail(pos.at("apiVersion"), fmt.Errorf("apiVersion: %w", err))
		return
	}
	gvk := gv.WithKind(head.Kind)
	if gvk == listGVK {
		l.loadList(j, pos)
		return
	}
	construct, ok := fileKinds[gvk]
	if !ok {
		fail(pos.at("kind"), fmt.Errorf("unknown kind %s %s; want %s", head.APIVersion, head.Kind, wantKinds))
		return
	}

	// Most Secrets and Credentials take the fast path (decodefast.go); everything else, and
	// every error, goes through the strict decoder.
	obj := construct()
	if l.maps == nil {
		l.maps = sharedMaps{}
	}
	if !fastDecode(j, obj, l.maps, l.names) {
		if gvk.Kind == "Secret" && !l.checkBase64(j, pos, head.label()) {
			return
		}
		obj = construct()
		strictErrs, err := kjson.UnmarshalStrict(j, obj)
		if err != nil {
			var typeErr *json.UnmarshalTypeError
			if errors.As(err, &typeErr) && typeErr.Field != "" {
				fail(pos.atWrongType(typeErr.Field, typeErr.Type),
					fmt.Errorf("%s: got %s, want %s", typeErr.Field, typeErr.Value, jsonTypeName(typeErr.Type)))
			} else {
				fail(pos.line, err)
			}
			return
		}
		for _, strictErr := range strictErrs {
			fail(pos.lineOf(strictErr), strictErr)
		}
		if len(strictErrs) > 0 {
			return
		}
	}
	if !l.checkMetadata(obj, pos, fail) {
		return
	}

	prepare(obj, gvk)
	o := loaded{fileObject: fileObject{obj: obj}, at: place{pos.file, pos.line}, head: head}
	o.content, o.spec = contentHashes(j)
	o.uid = stableUID(obj)
	obj.SetUID(types.UID(formatUUID(o.uid)))
	l.objs = append(l.objs, o)
}

// objectHead is what loadObject looks at first: enough to name an object and pick its type.
type objectHead struct {
	APIVersion string
	Kind       string
	Metadata   struct{ Name, Namespace string }
}

// label names the object in errors, as written in the file (made only for an error).
func (h *objectHead) label() string {
	return objectLabel(h.Kind, h.Metadata.Namespace, h.Metadata.Name)
}

// readHead reads apiVersion, kind, metadata.name and metadata.namespace from the valid JSON
// object j, leniently: a member that is missing or not a string reads as "" (the strict
// decode reports why). It is a scan, not a decode, because it runs for every document.
func readHead(j []byte) objectHead {
	var h objectHead
	members(j, func(key, member []byte) {
		switch string(key) {
		case `"apiVersion"`:
			h.APIVersion = jsonString(memberValue(key, member))
		case `"kind"`:
			h.Kind = jsonString(memberValue(key, member))
		case `"metadata"`:
			meta := memberValue(key, member)
			if len(meta) == 0 || meta[0] != '{' {
				return
			}
			members(meta, func(key, member []byte) {
				switch string(key) {
				case `"name"`:
					h.Metadata.Name = jsonString(memberValue(key, member))
				case `"namespace"`:
					h.Metadata.Namespace = jsonString(memberValue(key, member))
				}
			})
		}
	})
	return h
}

// memberValue is the value of a member as members passes it: what follows the key and ':'.
func memberValue(key, member []byte) []byte {
	return bytes.TrimSpace(bytes.TrimPrefix(bytes.TrimSpace(member[len(key):]), []byte(":")))
}

// jsonString reads a JSON string value; "" when v is not a string.
func jsonString(v []byte) string {
	if len(v) < 2 || v[0] != '"' {
		return ""
	}
	if bytes.IndexByte(v, '\\') < 0 {
		return intern(v[1 : len(v)-1]) // apiVersion and kind are a few strings
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return ""
	}
	return s
}

// loadList loads the items of a v1 List, each as if it were its own document.
func (l *loader) loadList(j []byte, pos position) {
	var list struct {
		metav1.TypeMeta `json:",inline"`
		Metadata        metav1.ListMeta   `json:"metadata,omitempty"`
		Items           []json.RawMessage `json:"items"`
	}
	strictErrs, err := kjson.UnmarshalStrict(j, &list)
	if err != nil {
		l.fail(&LoadError{File: pos.file, Line: pos.line, Object: "List", Err: err})
		return
	}
	for _, strictErr := range strictErrs {
		l.fail(&LoadError{File: pos.file, Line: pos.lineOf(strictErr), Object: "List", Err: strictErr})
	}
	if len(strictErrs) > 0 {
		return
	}
	for i, item := range list.Items {
		l.loadObject(bytes.TrimSpace(item), pos.item(fmt.Sprintf("items[%d]", i)))
	}
}

// checkBase64 reports, at the line of each key, Secret data values that are not base64:
// encoding/json would say so without naming the key.
func (l *loader) checkBase64(j []byte, pos position, label string) bool {
	hasData := false
	members(j, func(key, _ []byte) { hasData = hasData || string(key) == `"data"` })
	if !hasData {
		return true
	}
	var secret struct {
		Data map[string]json.RawMessage `json:"data"`
	}
	if json.Unmarshal(j, &secret) != nil {
		return true // not a map of strings: the strict decode says why
	}
	ok := true
	for _, k := range slices.Sorted(maps.Keys(secret.Data)) {
		var s string
		if json.Unmarshal(secret.Data[k], &s) != nil {
			continue
		}
		if _, err := base64.StdEncoding.DecodeString(s); err != nil {
			l.fail(&LoadError{File: pos.file, Line: pos.at("data." + k), Object: label,
				Err: fmt.Errorf("data.%s: invalid base64 (use stringData for plain text): %v", k, err)})
			ok = false
		}
	}
	return ok
}

// checkMetadata applies the API server's rules for names, namespaces and labels.
func (l *loader) checkMetadata(obj client.Object, pos position, fail func(int, error)) bool {
	ok := true
	if obj.GetName() == "" {
		msg := "metadata.name is required"
		if obj.GetGenerateName() != "" {
			msg += " (generateName is not supported in a policy directory)"
		}
		fail(pos.at("metadata"), errors.New(msg))
		ok = false
	} else if !validDNS1123Subdomain(obj.GetName()) {
		errs := validation.IsDNS1123Subdomain(obj.GetName())
		fail(pos.at("metadata.name"), fmt.Errorf("metadata.name: %s", strings.Join(errs, "; ")))
		ok = false
	}
	if ns := obj.GetNamespace(); ns != "" && !validDNS1123Label(ns) {
		errs := validation.IsDNS1123Label(ns)
		fail(pos.at("metadata.namespace"), fmt.Errorf("metadata.namespace: %s", strings.Join(errs, "; ")))
		ok = false
	}
	labels := obj.GetLabels()
	valid := true
	for k, v := range labels {
		valid = valid && validLabelKey(k) && validLabelValue(v)
	}
	if valid {
		return ok
	}
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		errs := metav1validation.ValidateLabels(map[string]string{k: labels[k]}, field.NewPath("metadata", "labels"))
		if len(errs) > 0 {
			fail(pos.at("metadata.labels."+k), errs.ToAggregate())
			ok = false
		}
	}
	return ok
}

// prepare fills in what the API server would on create, except what depends on load order.
// gvk is one of fileKinds.
func prepare(obj client.Object, gvk schema.GroupVersionKind) {
	*obj.GetObjectKind().(*metav1.TypeMeta) = fileTypeMeta[gvk]
	if obj.GetNamespace() == "" {
		obj.SetNamespace(metav1.NamespaceDefault)
	}
	obj.SetUID("")
	obj.SetResourceVersion("")
	obj.SetGeneration(0)
	obj.SetCreationTimestamp(metav1.Time{})
	obj.SetDeletionTimestamp(nil)
	obj.SetDeletionGracePeriodSeconds(nil)
	obj.SetSelfLink("")
	switch o := obj.(type) {
	case *corev1.Secret:
		if len(o.StringData) > 0 && o.Data == nil {
			o.Data = make(map[string][]byte, len(o.StringData))
		}
		for k, v := range o.StringData {
			o.Data[k] = []byte(v)
		}
		o.StringData = nil
	case *authv1alpha1.Credential:
		o.Status = authv1alpha1.CredentialStatus{}
	case *authv1alpha1.CustomAuthorizer:
		o.Status = authv1alpha1.CustomAuthorizerStatus{}
	case *authv1alpha1.APIBinding:
		o.Status = authv1alpha1.APIBindingStatus{}
		// A decoded list has room for up to twice its items (it grows by doubling), and a
		// binding keeps its credentials' names (up to 256) for as long as it lives.
		if app := o.Spec.App; app != nil && cap(app.Credentials) > len(app.Credentials) {
			app.Credentials = slices.Clone(app.Credentials)
		}
	}
}

// stableUID derives an object's UID from its group, kind, namespace and name.
func stableUID(obj client.Object) [16]byte {
	gk := obj.GetObjectKind().GroupVersionKind().GroupKind()
	var buf [256]byte // on the stack for any ordinary name
	b := append(buf[:0], "portcullis.files\x00"...)
	for _, part := range []string{gk.Group, gk.Kind, obj.GetNamespace()} {
		b = append(append(b, part...), 0)
	}
	sum := sha256.Sum256(append(b, obj.GetName()...))
	return [16]byte(sum[:16])
}

// formatUUID formats a UID as an RFC 9562 version 8 UUID.
func formatUUID(u [16]byte) string {
	u[6] = u[6]&0x0f | 0x80
	u[8] = u[8]&0x3f | 0x80
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	hex.Encode(b[9:13], u[4:6])
	hex.Encode(b[14:18], u[6:8])
	hex.Encode(b[19:23], u[8:10])
	hex.Encode(b[24:36], u[10:16])
	b[8], b[13], b[18], b[23] = '-', '-', '-', '-'
	return string(b[:])
}

// contentHashes hashes an object's JSON j (canonical: it is what sigs.k8s.io/yaml made of
// the YAML, keys sorted) twice: whole, and without its metadata and status members, which is
// what the API server bumps the generation for. j must be a valid JSON object.
func contentHashes(j []byte) (content, spec [16]byte) {
	c := sha256.Sum256(j)
	h := sha256.New()
	members(j, func(key, member []byte) {
		if string(key) != `"metadata"` && string(key) != `"status"` {
			h.Write(member)
			h.Write([]byte{0})
		}
	})
	var s [sha256.Size]byte
	h.Sum(s[:0])
	return [16]byte(c[:16]), [16]byte(s[:16])
}

// members calls f with each member of the valid JSON object j: the key as written (with its
// quotes) and the whole member ("key":value).
func members(j []byte, f func(key, member []byte)) {
	i := skipSpace(j, 1) // past '{'
	for i < len(j) && j[i] == '"' {
		start := i
		i = skipString(j, i)
		key := j[start:i]
		i = skipSpace(j, i)
		i = skipSpace(j, i+1) // past ':'
		i = skipValue(j, i)
		f(key, bytes.TrimRight(j[start:i], " \t\r\n"))
		i = skipSpace(j, i)
		if i < len(j) && j[i] == ',' {
			i = skipSpace(j, i+1)
		}
	}
}

func skipSpace(j []byte, i int) int {
	for i < len(j) && (j[i] == ' ' || j[i] == '\t' || j[i] == '\n' || j[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string that opens at j[i].
func skipString(j []byte, i int) int {
	for i++; i < len(j); i++ {
		switch j[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return i
}

// skipValue returns the index after the value that starts at j[i].
func skipValue(j []byte, i int) int {
	depth := 0
	for ; i < len(j); i++ {
		switch j[i] {
		case '"':
			i = skipString(j, i) - 1
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return i
			}
			if depth--; depth == 0 {
				return i + 1
			}
		case ',':
			if depth == 0 {
				return i
			}
		}
	}
	return i
}

const (
	defaultDebounce = 100 * time.Millisecond
	// maxDebounces bounds how long a steady stream of events can delay a reload: at most
	// this many debounce periods after the first event.
	maxDebounces = 10
	// rewatchInterval is how often a removed directory is looked for again.
	rewatchInterval = 500 * time.Millisecond
)

// FileSource serves policy from a directory of manifests (--source=files): it loads the
// directory, hands the objects to Apply, and reloads the whole directory whenever it
// changes. A reload that fails is logged and not applied, so the last good policy keeps
// serving until the directory is fixed.
//
// The directory itself is watched, not its files, so editors that save by renaming, sed -i
// and the "..data" symlink swaps of ConfigMap volumes are all seen. If the directory is
// removed, the last good policy stays and the directory is watched again once it is back.
//
// Each object is handed to Convert as soon as it is decoded and filled in, and Apply gets
// what Convert returned: a Convert that keeps less than the object (compile.Prepare) keeps a
// load of a large directory from holding every decoded object at once.
type FileSource[T any] struct {
	// Dir is the directory to load and watch.
	Dir string
	// Debounce is how quiet the directory must be before a reload, so a burst of events
	// (an editor's save, a ConfigMap update) makes one reload. Default 100ms.
	Debounce time.Duration
	// Log receives one line per reload, and the reason whenever the last good policy is kept.
	Log logr.Logger
	// Convert receives each object of a load, in LoadDir order, filled in as LoadDir
	// describes, with its generation bumped when its content other than metadata changed
	// since the previous load (but a Secret's or a Credential's, which stays 1: see
	// countsGeneration); the object is Convert's to
	// keep, read-only. It returns what Apply receives for the object, or false to leave the
	// object out. It is called from Start's goroutine or the goroutines decoding the load,
	// one call at a time, and only while the load has no problem: when it fails, nothing
	// Convert returned is applied.
	Convert func(obj client.Object) (T, bool)
	// Apply receives what Convert returned for the objects of every successful load, in
	// LoadDir order. It is called from Start's goroutine, one call at a time.
	Apply func(objs []T)
	// Rejected, if set, is called with the error of every load that fails (the first one,
	// which Start returns, and every later one, which keeps the last good policy).
	Rejected func(err error)

	// generations remembers, per object (by UID), the generation last applied and the
	// hash of its spec; kept for deleted objects too so a generation never repeats for
	// different content.
	generations map[[16]byte]generation
}

// generation is what the file source knows of an object: 16 bytes and no pointer, as there
// is one for every object ever loaded.
type generation struct {
	gen int64
	// spec is the first half of the hash fileObject.spec of the last applied object. A
	// change that 64 bits miss (2^-64) would keep the generation, not the old content: the
	// resourceVersion hashes the whole content.
	spec uint64
}

// Start loads the directory and calls Apply, then watches the directory until ctx is done,
// when it returns nil. If the first load fails Start returns its error without calling
// Apply. Start must be called once.
func (s *FileSource[T]) Start(ctx context.Context) error {
	if s.Apply == nil || s.Convert == nil {
		return errors.New("file source: Apply or Convert is not set")
	}
	dir := filepath.Clean(s.Dir)
	debounce := s.Debounce
	if debounce <= 0 {
		debounce = defaultDebounce
	}
	watcher, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch policy directory %s: %w", dir, err)
	}
	defer func() { _ = watcher.Close() }()
	// Watch before the first load, so a change made during it is not missed.
	if err := watcher.Add(dir); err != nil {
		return fmt.Errorf("watch policy directory %s: %w", dir, err)
	}
	if err := s.reload(dir); err != nil {
		return err
	}

	timer := time.NewTimer(debounce)
	timer.Stop()
	defer timer.Stop()
	var (
		pending    bool      // a reload is scheduled
		firstEvent time.Time // the first event since the last reload
		rewatch    *time.Ticker
		rewatchC   <-chan time.Time
	)
	schedule := func() {
		now := time.Now()
		if !pending {
			pending, firstEvent = true, now
			timer.Reset(debounce)
		} else if now.Sub(firstEvent) < maxDebounces*debounce {
			timer.Reset(debounce)
		}
	}
	defer func() {
		if rewatch != nil {
			rewatch.Stop()
		}
	}()

	for {
		select {
		case <-ctx.Done():
			return nil

		case ev, ok := <-watcher.Events:
			if !ok {
				return errors.New("file source: watcher closed")
			}
			if ev.Name == dir && ev.Has(fsnotify.Remove|fsnotify.Rename) {
				// The watch went with the directory; look for it again until it is back.
				s.Log.Info("Policy directory is gone; waiting for it to come back", "dir", dir)
				if rewatch == nil {
					rewatch = time.NewTicker(rewatchInterval)
					rewatchC = rewatch.C
				}
				schedule()
				continue
			}
			if ev.Name == dir || isManifestName(filepath.Base(ev.Name)) ||
				strings.HasPrefix(filepath.Base(ev.Name), "..") { // ConfigMap volume swaps
				schedule()
			}

		case err, ok := <-watcher.Errors:
			if !ok {
				return errors.New("file source: watcher closed")
			}
			s.Log.Error(err, "Watching policy directory", "dir", dir)
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				schedule() // events were lost
			}

		case <-rewatchC:
			if err := watcher.Add(dir); err != nil {
				continue
			}
			rewatch.Stop()
			rewatch, rewatchC = nil, nil
			s.Log.Info("Watching policy directory again", "dir", dir)
			schedule()

		case <-timer.C:
			pending = false
			if err := s.reload(dir); err != nil {
				s.Log.Error(err, "Keeping the last good policy", "dir", dir)
			}
		}
	}
}

// reload loads the directory and, if that succeeds, applies it.
func (s *FileSource[T]) reload(dir string) (err error) {
	defer func() {
		if err != nil && s.Rejected != nil {
			s.Rejected(err)
		}
	}()
	start := time.Now()
	var (
		objs    []T
		loaded  int
		applied []appliedGeneration // recorded once the load is good
	)
	reserve := func(docs int) {
		objs = make([]T, 0, docs)
		if s.generations == nil {
			applied = make([]appliedGeneration, 0, docs)
		}
	}
	err = loadDir(dir, reserve, func(i int, o *fileObject) {
		loaded++
		gen := int64(1)
		if countsGeneration(o.obj) {
			g, changed := s.nextGeneration(o)
			if changed {
				applied = append(applied, appliedGeneration{o.uid, g})
			}
			gen = g.gen
		}
		o.setGeneration(int64(i), gen)
		if t, ok := s.Convert(o.obj); ok {
			objs = append(objs, t)
		}
	})
	if err != nil {
		return err
	}
	if s.generations == nil {
		s.generations = make(map[[16]byte]generation, len(applied))
	}
	for _, a := range applied {
		s.generations[a.uid] = a.generation
	}
	s.Log.Info("Loaded policy directory", "dir", dir, "objects", loaded, "took", time.Since(start).Round(time.Millisecond))
	s.Apply(objs)
	return nil
}

// countsGeneration reports whether the file source counts obj's generations. A Secret or a
// Credential keeps generation 1, as nothing reads it without a cluster: a Credential's goes
// only into its status's observedGeneration, which files do not have, and a Secret's not even
// there. Their resourceVersion still changes with their content. They are nearly all the
// objects of a large policy: a record each would be 5.7 MB for 100,000 credentials. A
// CustomAuthorizer's generation keys its decisions cache; APIBindings, fewer, are counted as
// a cluster would.
func countsGeneration(obj client.Object) bool {
	switch obj.(type) {
	case *corev1.Secret, *authv1alpha1.Credential:
		return false
	}
	return true
}

// appliedGeneration is the generation an object of a load gets.
type appliedGeneration struct {
	uid [16]byte
	generation
}

// nextGeneration is the generation the API server would give o: one more than last time
// when anything but metadata changed. changed is false when it is what the source knows.
func (s *FileSource[T]) nextGeneration(o *fileObject) (g generation, changed bool) {
	spec := binary.LittleEndian.Uint64(o.spec[:8])
	g, ok := s.generations[o.uid]
	switch {
	case !ok:
		return generation{gen: 1, spec: spec}, true
	case g.spec != spec:
		return generation{gen: g.gen + 1, spec: spec}, true
	}
	return g, false
}
