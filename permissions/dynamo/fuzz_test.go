package dynamo

import (
	"encoding/json"
	"testing"

	"github.com/pretoken/pretoken/permissions"
)

// FuzzDecodeInline feeds arbitrary bytes as the inline policy copy: the
// loader either rejects them or yields a policy that compiles only if valid,
// and never panics. A stored copy is what a tampered or corrupt table holds.
func FuzzDecodeInline(f *testing.F) {
	p, err := permissions.ReadFile("../../examples/policy.yaml")
	if err != nil {
		f.Fatal(err)
	}
	b, _ := json.Marshal(p)
	f.Add(b)
	f.Add([]byte(`{"roles":{"a":{"permissions":["x y"]}}}`))
	f.Add([]byte(`{"groups":{"g":["ghost"]},"extra":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := decodeInline(data)
		if err != nil {
			return
		}
		s, err := permissions.Compile(p, "fuzz")
		if err != nil {
			return // invalid: the cache keeps serving the last good snapshot
		}
		for g := range p.Groups {
			s.Resolve(permissions.Subject{ClientID: "c", Groups: []string{g}})
		}
	})
}
