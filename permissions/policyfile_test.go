package permissions

import (
	"errors"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseFileExample(t *testing.T) {
	p, err := ReadFile("../examples/policy.yaml")
	if err != nil {
		t.Fatalf("example policy: %v", err)
	}
	if len(p.Roles) == 0 || len(p.Groups) == 0 || len(p.Machines) == 0 || p.Clients[DefaultProfile].AccessToken.ScopePrefix == "" {
		t.Errorf("example policy parsed to %+v, missing parts", p)
	}
}

func TestParseFile(t *testing.T) {
	const valid = `
roles:
  viewer: {description: Read orders, permissions: [orders:read]}
  editor: {inherits: [viewer], permissions: [orders:write]}
groups:
  staff: [editor]
defaults:
  roles: [viewer]
machines:
  7m2mclient: [viewer]
clients:
  default:
    idToken:
      claims: {app_roles: roles, tenant: "attribute:custom:tenant_id"}
    accessToken:
      scopes: true
      scopePrefix: "orders-api/"
      allow: ["orders:*"]
      suppressScopes: [aws.cognito.signin.user.admin]
limits:
  maxTokenBytes: 4096
  onOverflow: roles-only
`
	got, err := ParseFile("p.yaml", []byte(valid))
	if err != nil {
		t.Fatalf("ParseFile: %v", err)
	}
	want := &Policy{
		Roles: map[string]Role{
			"viewer": {Description: "Read orders", Permissions: []string{"orders:read"}},
			"editor": {Inherits: []string{"viewer"}, Permissions: []string{"orders:write"}},
		},
		Groups:   map[string][]string{"staff": {"editor"}},
		Defaults: Defaults{Roles: []string{"viewer"}},
		Machines: map[string][]string{"7m2mclient": {"viewer"}},
		Clients: map[string]ClientProfile{DefaultProfile: {
			IDToken: TokenProfile{Claims: map[string]string{"app_roles": "roles", "tenant": "attribute:custom:tenant_id"}},
			AccessToken: TokenProfile{Scopes: true, ScopePrefix: "orders-api/", Allow: []string{"orders:*"},
				SuppressScopes: []string{"aws.cognito.signin.user.admin"}},
		}},
		Limits: Limits{MaxTokenBytes: 4096, OnOverflow: OverflowRolesOnly},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("policy (-want +got):\n%s", diff)
	}
}

func TestParseFileEmpty(t *testing.T) {
	for _, src := range []string{"", "# nothing yet\n", "{}"} {
		p, err := ParseFile("p.yaml", []byte(src))
		if err != nil {
			t.Errorf("ParseFile(%q): %v", src, err)
			continue
		}
		if diff := cmp.Diff(&Policy{}, p); diff != "" {
			t.Errorf("ParseFile(%q) (-want +got):\n%s", src, diff)
		}
	}
}

func TestParseFileProblems(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"unknown keys everywhere", "roles:\n  a:\n    permission: [x]\nclient: {}\n", []string{
			`p.yaml:3:5: roles.a.permission: unknown key "permission" (did you mean "permissions"?)`,
			`p.yaml:4:1: client: unknown key "client" (did you mean "clients"?)`}},
		{"wrong types", "roles:\n  a:\n    permissions: x\nlimits:\n  maxTokenBytes: lots\n", []string{
			"p.yaml:3:18: roles.a.permissions: cannot unmarshal !!str `x` into a list",
			"p.yaml:5:18: limits.maxTokenBytes: cannot unmarshal !!str `lots` into a whole number"}},
		{"duplicate keys, all of them", "roles:\n  a: {}\n  a: {}\ngroups:\n  g: [a]\n  g: [a]\n", []string{
			`p.yaml:3:3: roles.a: duplicate key "a" (first at line 2)`,
			`p.yaml:6:3: groups.g: duplicate key "g" (first at line 5)`}},
		{"validation errors point at their line", "roles:\n  a:\n    inherits: [b]\n  b:\n    permissions: [ok, \"not ok\"]\ngroups:\n  staff: [ghost]\n", []string{
			`p.yaml:5:23: roles.b.permissions[1]: permission "not ok" must be 1 to 256 printable characters without blanks, quotes or backslashes`,
			`p.yaml:7:11: groups.staff[0]: unknown role "ghost"`}},
		{"reserved claim", "clients:\n  default:\n    idToken:\n      claims: {sub: roles}\n", []string{
			`p.yaml:4:16: clients.default.idToken.claims.sub: claim "sub" is reserved by Cognito`}},
		{"not a mapping", "- a\n- b\n", []string{"p.yaml:1:1: cannot unmarshal !!seq into a mapping"}},
		// What the decoder accepts but a reviewer could misread.
		{"second document", "roles:\n  a: {}\n---\nroles:\n  admin: {permissions: [\"*\"]}\n", []string{
			"p.yaml:3:1: a second YAML document: a policy file holds exactly one (remove the --- separator and what follows, or merge it into the first)"}},
		{"merge key", "roles:\n  base: {permissions: [x]}\n  a:\n    <<: {permissions: [z]}\n    permissions: [y]\n", []string{
			"p.yaml:4:5: roles.a: merge key <<: merge keys are not allowed (they override keys silently); write the keys out"}},
		{"anchor and alias", "roles:\n  a: &r {permissions: [x]}\n  b: *r\n", []string{
			"p.yaml:2:6: roles.a: anchor &r: anchors are not allowed; write the value out where it applies",
			"p.yaml:3:6: roles.b: alias *r: aliases are not allowed; write the value out where it applies"}},
		{"binary tag", "roles:\n  a: {description: !!binary aGVsbG8=}\n", []string{
			"p.yaml:2:20: roles.a.description: explicit tag !!binary: tags are not allowed; write the value as plain YAML"}},
		{"str tag", "groups:\n  g: [!!str admin]\n", []string{
			"p.yaml:2:7: groups.g[0]: explicit tag !!str: tags are not allowed; write the value as plain YAML"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseFile("p.yaml", []byte(tt.src))
			var ferr *FileError
			if !errors.As(err, &ferr) {
				t.Fatalf("ParseFile = %v, want a *FileError", err)
			}
			var got []string
			for _, p := range ferr.Problems {
				got = append(got, "p.yaml:"+p.String())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

// The YAML library's line for a syntax error is near the problem, not always
// on it, so this checks only that there is one and that the words survive.
func TestParseFileSyntaxError(t *testing.T) {
	_, err := ParseFile("p.yaml", []byte("roles:\n  a: 1\n\tb: 2\n"))
	var ferr *FileError
	if !errors.As(err, &ferr) || len(ferr.Problems) != 1 {
		t.Fatalf("ParseFile = %v, want one problem", err)
	}
	if p := ferr.Problems[0]; p.Line == 0 || !strings.Contains(p.Msg, "tab character") {
		t.Errorf("problem = %+v, want a line and the parser's words", p)
	}
}

// A newcomer's file with several mistakes of every kind: one run names them
// all, in file order, each at its line and column.
func TestParseFileListsEveryProblem(t *testing.T) {
	const src = `roles:
  viewer:
    permissions: [orders:read]
    inherts: [x]
  editor:
    inherits: [viewer, ghost]
    permissions: orders:write
  a: {inherits: [b]}
  b: {inherits: [a]}
  broken: [not, a, role]
groups:
  staff: [editr, broken]
clients:
  default:
    accessToken:
      scopes: "yes"
      scopePrefx: x
limits:
  maxTokenBytes: lots
`
	want := []string{
		`p.yaml:4:5: roles.viewer.inherts: unknown key "inherts" (did you mean "inherits"?)`,
		`p.yaml:6:24: roles.editor.inherits[1]: unknown role "ghost"`,
		"p.yaml:7:18: roles.editor.permissions: cannot unmarshal !!str `orders:...` into a list",
		`p.yaml:9:18: roles.b.inherits[0]: inheritance cycle: a -> b -> a`,
		"p.yaml:10:3: roles.broken: cannot unmarshal !!seq into a mapping",
		`p.yaml:12:11: groups.staff[0]: unknown role "editr" (did you mean "editor"?)`,
		`p.yaml:16:15: clients.default.accessToken.scopes: "yes" is not a boolean: write true or false`,
		`p.yaml:17:7: clients.default.accessToken.scopePrefx: unknown key "scopePrefx" (did you mean "scopePrefix"?)`,
		"p.yaml:19:18: limits.maxTokenBytes: cannot unmarshal !!str `lots` into a whole number",
	}
	_, err := ParseFile("p.yaml", []byte(src))
	var ferr *FileError
	if !errors.As(err, &ferr) {
		t.Fatalf("ParseFile = %v, want a *FileError", err)
	}
	var got []string
	for _, p := range ferr.Problems {
		got = append(got, "p.yaml:"+p.String())
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}

func TestParseFileStrictBooleans(t *testing.T) {
	for _, v := range []string{`"yes"`, "yes", "on", "y", "True", `"true"`, "1", "[true]"} {
		src := "clients:\n  default:\n    accessToken:\n      scopes: " + v + "\n"
		_, err := ParseFile("p.yaml", []byte(src))
		var ferr *FileError
		if !errors.As(err, &ferr) || len(ferr.Problems) != 1 || ferr.Problems[0].Line != 4 {
			t.Errorf("scopes: %s: ParseFile = %v, want one problem at line 4", v, err)
		}
	}
	for _, v := range []string{"true", "false"} {
		if _, err := ParseFile("p.yaml", []byte("clients:\n  default:\n    accessToken:\n      scopes: "+v+"\n")); err != nil {
			t.Errorf("scopes: %s: %v", v, err)
		}
	}
}

// The YAML library names the line where the enclosing block began, counted
// from zero; the problem names the line of the mistake.
func TestParseFileSyntaxErrorLine(t *testing.T) {
	tests := []struct {
		name, src    string
		line, column int
	}{
		{"indentation", "roles:\n  viewer:\n    permissions: [a]\n   bad: 1\n", 4, 4},
		{"tab", "roles:\n  viewer:\n    permissions: [a]\n\tfoo: 1\n", 4, 1},
		{"unclosed flow", "roles:\n  viewer:\n    permissions: [a\n\ngroups: {}\n", 3, 5},
		{"after a valid multi-line flow", "roles:\n  viewer:\n    permissions: [a,\n      b]\n  editor:\n    description: x\n   oops: 1\n", 7, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseFile("p.yaml", []byte(tt.src))
			var ferr *FileError
			if !errors.As(err, &ferr) || len(ferr.Problems) != 1 {
				t.Fatalf("ParseFile = %v, want one problem", err)
			}
			if p := ferr.Problems[0]; p.Line != tt.line || p.Column != tt.column {
				t.Errorf("problem at %d:%d (%s), want %d:%d", p.Line, p.Column, p.Msg, tt.line, tt.column)
			}
		})
	}
}

// The example policy says that it shows every key the policy file knows
// (optional parts in comments): each one appears in it.
func TestExampleShowsEveryKey(t *testing.T) {
	data, err := os.ReadFile("../examples/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	var collect func(reflect.Type)
	seen := map[reflect.Type]bool{}
	collect = func(ty reflect.Type) {
		if seen[ty] {
			return
		}
		seen[ty] = true
		switch ty.Kind() {
		case reflect.Map, reflect.Slice, reflect.Pointer:
			collect(ty.Elem())
		case reflect.Struct:
			for f := range ty.Fields() {
				if name, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); name != "" {
					keys = append(keys, name)
				}
				collect(f.Type)
			}
		}
	}
	collect(reflect.TypeFor[Policy]())
	for _, k := range keys {
		if !regexp.MustCompile(`(?m)^[#\s-]*` + regexp.QuoteMeta(k) + `:`).Match(data) {
			t.Errorf("examples/policy.yaml does not show the key %q", k)
		}
	}
}
