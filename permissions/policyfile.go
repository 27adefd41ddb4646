package permissions

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

// FileError is every problem found in a policy file, each with its place.
type FileError struct {
	File     string
	Problems []Problem
}

// Problem is one problem in a policy file. Line and Column are 1-based, or 0
// where the place is unknown.
type Problem struct {
	Line, Column int
	Path         Path
	Msg          string
}

func (p Problem) String() string {
	var b strings.Builder
	switch {
	case p.Line > 0 && p.Column > 0:
		fmt.Fprintf(&b, "%d:%d: ", p.Line, p.Column)
	case p.Line > 0:
		fmt.Fprintf(&b, "%d: ", p.Line)
	}
	if len(p.Path) > 0 {
		b.WriteString(p.Path.String() + ": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

func (e *FileError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = e.File + ":" + p.String()
	}
	return strings.Join(lines, "\n")
}

// ReadFile reads and parses the policy file at path. See ParseFile.
func ReadFile(path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read policy: %w", err)
	}
	return ParseFile(path, data)
}

// ParseFile parses a YAML policy named name and validates it. Any problem,
// from malformed YAML to an unknown role, comes back as a *FileError that
// lists every problem found with its line and column.
func ParseFile(name string, data []byte) (*Policy, error) {
	ferr := &FileError{File: name}
	docs := yaml.NewDecoder(bytes.NewReader(data))
	var root, next yaml.Node
	if err := docs.Decode(&root); err != nil && !errors.Is(err, io.EOF) {
		ferr.Problems = syntaxProblems(data, err)
		return nil, ferr
	}
	// A second document would be ignored by the decoder: a reviewer would
	// see a change that never applies.
	switch err := docs.Decode(&next); {
	case err == nil:
		ferr.Problems = append(ferr.Problems, Problem{Line: next.Line, Column: next.Column,
			Msg: "a second YAML document: a policy file holds exactly one (remove the --- separator and what follows, or merge it into the first)"})
	case !errors.Is(err, io.EOF):
		ferr.Problems = syntaxProblems(data, err)
		return nil, ferr
	}
	pos := make(map[string]*yaml.Node)
	var places []place
	walk(&root, nil, pos, &places, ferr)
	providerless(&root, ferr)
	if len(ferr.Problems) > 0 {
		return nil, ferr // decoding would stop at the first duplicate key
	}
	strictBools(&root, reflect.TypeFor[Policy](), nil, ferr)
	// The decoder goes on past unknown keys and values of the wrong type,
	// so the policy it returns is checked too: one run lists every problem.
	var p Policy
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&p); err != nil && !errors.Is(err, io.EOF) { // io.EOF: an empty file is an empty policy
		var terr *yaml.TypeError
		if !errors.As(err, &terr) {
			ferr.Problems = append(ferr.Problems, yamlProblems(err, places)...)
			return nil, ferr
		}
		ferr.Problems = append(ferr.Problems, yamlProblems(err, places)...)
		keepMalformedRoles(&root, &p)
	}
	if err := Validate(&p); err != nil {
		var verr *ValidationError
		if !errors.As(err, &verr) {
			return nil, err
		}
		for _, fe := range verr.Errors {
			pr := Problem{Path: fe.Path, Msg: fe.Msg}
			if n := locate(pos, fe.Path); n != nil {
				pr.Line, pr.Column = n.Line, n.Column
			}
			ferr.Problems = append(ferr.Problems, pr)
		}
	}
	if len(ferr.Problems) > 0 {
		// In file order, so a reader can go down the file once; problems
		// without a place come last.
		slices.SortStableFunc(ferr.Problems, func(a, b Problem) int {
			if (a.Line == 0) != (b.Line == 0) {
				return cmp.Compare(b.Line, a.Line)
			}
			return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
		})
		return nil, ferr
	}
	return &p, nil
}

// providerless reports idpGroups written as one mapping, the form before
// each entry named its provider, as a validation problem rather than the
// decoder's "cannot unmarshal" message.
func providerless(root *yaml.Node, ferr *FileError) {
	if root.Kind != yaml.DocumentNode || len(root.Content) == 0 || root.Content[0].Kind != yaml.MappingNode {
		return
	}
	m := root.Content[0].Content
	for i := 0; i+1 < len(m); i += 2 {
		if k, v := m[i], m[i+1]; k.Value == "idpGroups" && v.Kind == yaml.MappingNode {
			ferr.Problems = append(ferr.Problems, Problem{Line: k.Line, Column: k.Column, Path: Path{"idpGroups"},
				Msg: "idpGroups is a list of entries that each name their provider (- provider: Okta, attribute: custom:groups, roles: ...): " +
					"without provider, any identity provider, or the user, could grant these roles"})
		}
	}
}

// keepMalformedRoles adds an empty role for each role the file names whose
// body the decoder could not read, so that references to it are not also
// reported as unknown: the type error is the one problem to fix.
func keepMalformedRoles(root *yaml.Node, p *Policy) {
	roles := child(root, "roles")
	if roles == nil || roles.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(roles.Content); i += 2 {
		name := roles.Content[i].Value
		if _, ok := p.Roles[name]; !ok {
			if p.Roles == nil {
				p.Roles = map[string]Role{}
			}
			p.Roles[name] = Role{}
		}
	}
}

// child returns the value of key in the document's top mapping, or nil.
func child(root *yaml.Node, key string) *yaml.Node {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// strictBools reports every boolean the decoder would take although it is
// written as neither true nor false: YAML 1.1's yes, on, y (also in quotes)
// and True. A quoted word would otherwise turn a switch on. What the decoder
// refuses itself it reports itself.
func strictBools(n *yaml.Node, t reflect.Type, path Path, ferr *FileError) {
	if n.Kind == yaml.DocumentNode {
		for _, c := range n.Content {
			strictBools(c, t, path, ferr)
		}
		return
	}
	switch t.Kind() {
	case reflect.Bool:
		lenient := n.Tag == "!!bool" || n.Tag == "!!str" && slices.Contains([]string{"y", "yes", "on", "n", "no", "off"}, strings.ToLower(n.Value))
		if n.Kind == yaml.ScalarNode && lenient && n.Value != "true" && n.Value != "false" {
			ferr.Problems = append(ferr.Problems, Problem{Line: n.Line, Column: n.Column, Path: path,
				Msg: fmt.Sprintf("%q is not a boolean: write true or false", n.Value)})
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			strictBools(n.Content[i+1], t.Elem(), path.with(n.Content[i].Value), ferr)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return
		}
		for i, c := range n.Content {
			strictBools(c, t.Elem(), path.with(index(i)), ferr)
		}
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return
		}
		fields := map[string]reflect.Type{}
		for f := range t.Fields() {
			if name, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); name != "" {
				fields[name] = f.Type
			}
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if ft, ok := fields[n.Content[i].Value]; ok {
				strictBools(n.Content[i+1], ft, path.with(n.Content[i].Value), ferr)
			}
		}
	}
}

// syntaxProblems places a YAML syntax error on its line. The YAML library
// names the line where the enclosing block or flow began (and counts it
// from zero), not the line of the mistake: an indentation slip at line 4
// under a mapping that starts at line 2 comes back as "line 1". The line
// of the mistake is the first whose prefix of the file fails in the same
// words; its column is where the line's text starts.
func syntaxProblems(data []byte, err error) []Problem {
	problems := yamlProblems(err, nil)
	if len(problems) != 1 {
		return problems
	}
	pr := &problems[0]
	lines := bytes.SplitAfter(data, []byte("\n"))
	for k := max(pr.Line, 1); k <= len(lines); k++ {
		var n yaml.Node
		perr := yaml.Unmarshal(bytes.Join(lines[:k], nil), &n)
		if perr == nil {
			continue
		}
		if again := yamlProblems(perr, nil); len(again) == 1 && again[0].Msg == pr.Msg {
			line := lines[k-1]
			pr.Line = k
			pr.Column = len(line) - len(bytes.TrimLeft(line, " ")) + 1
			break
		}
	}
	return problems
}

// locate finds the node for path, or for the nearest enclosing path.
func locate(pos map[string]*yaml.Node, path Path) *yaml.Node {
	for i := len(path); i > 0; i-- {
		if n, ok := pos[path[:i].Key()]; ok {
			return n
		}
	}
	return nil
}

// walk records the node of every path and reports duplicate mapping keys,
// which the YAML decoder would report one at a time, and the YAML features
// that hide a value from a reviewer: anchors and aliases (a value defined in
// one place and applied in others), merge keys (which override keys
// silently) and explicit tags such as !!binary (a value that does not read
// as what it is). A policy file says every value where it applies.
// place is a node and the path it stands at, for placing the decoder's
// problems, which name a line only.
type place struct {
	node *yaml.Node
	path Path
}

func walk(n *yaml.Node, path Path, pos map[string]*yaml.Node, places *[]place, ferr *FileError) {
	*places = append(*places, place{n, path})
	bad := func(format string, args ...any) {
		ferr.Problems = append(ferr.Problems, Problem{Line: n.Line, Column: n.Column, Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	switch {
	case n.Kind == yaml.AliasNode:
		bad("alias *%s: aliases are not allowed; write the value out where it applies", n.Value)
		return
	case n.Anchor != "":
		bad("anchor &%s: anchors are not allowed; write the value out where it applies", n.Anchor)
	case n.Style&yaml.TaggedStyle != 0:
		bad("explicit tag %s: tags are not allowed; write the value as plain YAML", n.Tag)
	}
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			walk(c, path, pos, places, ferr)
		}
	case yaml.MappingNode:
		seen := make(map[string]*yaml.Node)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Tag == "!!merge" {
				ferr.Problems = append(ferr.Problems, Problem{Line: k.Line, Column: k.Column, Path: path,
					Msg: "merge key <<: merge keys are not allowed (they override keys silently); write the keys out"})
				continue
			}
			if prev, ok := seen[k.Value]; ok {
				ferr.Problems = append(ferr.Problems, Problem{Line: k.Line, Column: k.Column, Path: path.with(k.Value),
					Msg: fmt.Sprintf("duplicate key %q (first at line %d)", k.Value, prev.Line)})
				continue
			}
			seen[k.Value] = k
			p := path.with(k.Value)
			pos[p.Key()] = k
			*places = append(*places, place{k, p})
			walk(v, p, pos, places, ferr)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p := path.with(index(i))
			pos[p.Key()] = c
			walk(c, p, pos, places, ferr)
		}
	}
}

// yamlErrors are the patterns of the YAML library's messages, compiled
// when a file first has a problem: not at every cold start.
var yamlErrors = sync.OnceValue(func() struct{ line, unknownField, goType, badValue *regexp.Regexp } {
	return struct{ line, unknownField, goType, badValue *regexp.Regexp }{
		regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`),
		regexp.MustCompile(`^field (\S+) not found in type (?:permissions\.)?(\S+)$`),
		regexp.MustCompile(` into (?:\[\]|map\[string\])?(?:permissions\.)?(\w+)$`),
		regexp.MustCompile("^cannot unmarshal !!\\w+ `([^`]*)`"),
	}
})

// keysOf are the keys a policy file allows in each mapping, by the Go type
// the decoder names.
var keysOf = sync.OnceValue(func() map[string][]string {
	out := map[string][]string{}
	for _, t := range []reflect.Type{reflect.TypeFor[Policy](), reflect.TypeFor[Role](), reflect.TypeFor[Defaults](),
		reflect.TypeFor[ClientProfile](), reflect.TypeFor[TokenProfile](), reflect.TypeFor[Limits](), reflect.TypeFor[IdPGroup](), reflect.TypeFor[Tenancy]()} {
		for f := range t.Fields() {
			if name, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); name != "" {
				out[t.Name()] = append(out[t.Name()], name)
			}
		}
	}
	return out
})

// didYouMean returns the allowed key closest to key, or "".
func didYouMean(key string, allowed []string) string {
	best, bestD := "", 3 // at most two edits away
	for _, a := range allowed {
		if d := editDistance(strings.ToLower(key), strings.ToLower(a)); d < bestD {
			best, bestD = a, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// placeOn finds the node on line whose text is value (any node on the
// line when value is empty), to give a problem its column and path.
func placeOn(places []place, line int, value string) (place, bool) {
	for _, p := range places {
		// The decoder shortens long values to their start and "...".
		short, cut := strings.CutSuffix(value, "...")
		match := value == "" || p.node.Value == value || cut && strings.HasPrefix(p.node.Value, short)
		if p.node.Line == line && match && p.node.Kind != yaml.DocumentNode {
			return p, true
		}
	}
	return place{}, false
}

// yamlProblems turns the YAML library's errors into problems with lines (and,
// where places can tell, columns and paths), in words that name no Go types.
func yamlProblems(err error, places []place) []Problem {
	var msgs []string
	var terr *yaml.TypeError
	if errors.As(err, &terr) {
		msgs = terr.Errors
	} else {
		msgs = []string{err.Error()}
	}
	problems := make([]Problem, 0, len(msgs))
	re := yamlErrors()
	for _, m := range msgs {
		var pr Problem
		if sub := re.line.FindStringSubmatch(m); sub != nil {
			fmt.Sscan(sub[1], &pr.Line)
			m = sub[2]
		}
		m = strings.TrimPrefix(m, "yaml: ")
		value := ""
		if sub := re.unknownField.FindStringSubmatch(m); sub != nil {
			m, value = fmt.Sprintf("unknown key %q", sub[1]), sub[1]
			if guess := didYouMean(sub[1], keysOf()[sub[2]]); guess != "" {
				m += fmt.Sprintf(" (did you mean %q?)", guess)
			}
		} else if sub := re.goType.FindStringSubmatch(m); sub != nil {
			if v := re.badValue.FindStringSubmatch(m); v != nil {
				value = v[1]
			}
			m = strings.TrimSuffix(m, sub[0]) + " into " + friendlyType(sub[0])
		}
		if at, ok := placeOn(places, pr.Line, value); ok && pr.Line > 0 {
			pr.Column, pr.Path = at.node.Column, at.path
		}
		pr.Msg = m
		problems = append(problems, pr)
	}
	return problems
}

func friendlyType(into string) string {
	switch {
	case strings.Contains(into, "[]"):
		return "a list"
	case strings.Contains(into, "map["), strings.HasSuffix(into, "Policy"), strings.HasSuffix(into, "Role"),
		strings.HasSuffix(into, "Profile"), strings.HasSuffix(into, "Defaults"), strings.HasSuffix(into, "Limits"):
		return "a mapping"
	case strings.HasSuffix(into, "bool"):
		return "true or false"
	case strings.HasSuffix(into, "int"):
		return "a whole number"
	}
	return "a string"
}

// ContentHash returns a label for a policy file's content: the first 12 hex
// digits of its SHA-256, so a log line names the exact policy a token was
// issued under. It labels a file's Snapshot as a table's version number
// labels a stored one.
func ContentHash(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:6])
}

// LoadFile reads, validates and compiles the policy file at path, labelled
// with its ContentHash.
func LoadFile(path string) (*Snapshot, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read policy: %w", err)
	}
	p, err := ParseFile(path, data)
	if err != nil {
		return nil, err
	}
	return Compile(p, ContentHash(data))
}

// MarshalFile writes p as a policy file: keys sorted, empty values left
// out, so the same policy always gives the same bytes. header, if not
// empty, becomes a comment line at the top.
func MarshalFile(p *Policy, header string) ([]byte, error) {
	var buf bytes.Buffer
	if header != "" {
		for _, line := range strings.Split(header, "\n") {
			buf.WriteString("# " + line + "\n")
		}
	}
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if len(p.IdPGroups) > 1 {
		sorted := *p
		sorted.IdPGroups = p.IdPGroups.Sorted()
		p = &sorted
	}
	if err := enc.Encode(p); err != nil {
		return nil, fmt.Errorf("encode policy: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode policy: %w", err)
	}
	return buf.Bytes(), nil
}
