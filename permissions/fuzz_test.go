package permissions

import (
	"os"
	"testing"
)

// FuzzParseFile checks that any policy the file parser accepts compiles and
// resolves, and that no input makes the parser panic.
func FuzzParseFile(f *testing.F) {
	example, err := os.ReadFile("../examples/policy.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example)
	f.Add([]byte("roles:\n  a: {inherits: [b]}\n  b: {inherits: [a]}\n"))
	f.Add([]byte("roles: {a: {permissions: [x]}}\ngroups: {g: [a]}\nclients: {default: {idToken: {claims: {c: permissions}}}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseFile("fuzz.yaml", data)
		if err != nil {
			return
		}
		s, err := Compile(p, "fuzz")
		if err != nil {
			t.Fatalf("a parsed policy failed to compile: %v", err)
		}
		var groups []string
		for g := range p.Groups {
			groups = append(groups, g)
		}
		for id := range p.Clients {
			s.Resolve(Subject{ClientID: id, Groups: groups})
		}
		for id := range p.Machines {
			s.Resolve(Subject{ClientID: id, Machine: true})
		}
	})
}
