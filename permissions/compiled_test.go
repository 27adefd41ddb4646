package permissions

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// randomPolicy is a valid policy drawn from rng: roles inheriting earlier
// roles (to any depth, diamonds included), shared permissions, groups, IdP
// groups, defaults, machines and client profiles with every claim source,
// allow-lists with patterns, scopes with and without a prefix.
func randomPolicy(rng *rand.Rand) *Policy {
	nRoles := 1 + rng.IntN(40)
	nPerms := 1 + rng.IntN(30)
	perm := func() string { return fmt.Sprintf("res%d:act%d", rng.IntN(nPerms)%7, rng.IntN(nPerms)) }
	roleName := func(i int) string { return fmt.Sprintf("r%02d", i) }
	some := func(max int) []string {
		var out []string
		for range rng.IntN(max + 1) {
			out = append(out, roleName(rng.IntN(nRoles)))
		}
		return dedupe(out)
	}
	p := &Policy{Roles: map[string]Role{}}
	for i := range nRoles {
		var r Role
		for range rng.IntN(5) {
			r.Permissions = append(r.Permissions, perm())
		}
		r.Permissions = dedupe(r.Permissions)
		if i > 0 {
			for range rng.IntN(3) {
				r.Inherits = append(r.Inherits, roleName(rng.IntN(i)))
			}
			r.Inherits = dedupe(r.Inherits)
		}
		p.Roles[roleName(i)] = r
	}
	if rng.IntN(2) == 0 {
		p.Groups = map[string][]string{}
		for i := range rng.IntN(12) {
			p.Groups[fmt.Sprintf("g%d", i)] = some(3)
		}
	}
	p.Defaults.Roles = some(2)
	if rng.IntN(2) == 0 {
		p.Machines = map[string][]string{"m1": some(2), "m2": some(1)}
	}
	if rng.IntN(2) == 0 {
		p.IdPGroups = IdPGroups{{Provider: "Okta", Attribute: "custom:groups", Roles: map[string][]string{"Eng": some(2), "Ops": some(2)}}}
		if rng.IntN(2) == 0 {
			p.IdPGroups = append(p.IdPGroups, IdPGroup{Provider: "Azure", Attribute: "custom:azgroups", Roles: map[string][]string{"Eng": some(1)}})
		}
	}
	if rng.IntN(3) == 0 {
		p.Tenancy = Tenancy{Active: TenancyStored}
	}
	sources := []string{SourceRoles, SourcePermissions, SourceGroups, "attribute:custom:x"}
	if !p.Tenancy.IsZero() {
		sources = append(sources, SourceTenant, SourceTenants)
	}
	token := func(access bool) TokenProfile {
		var t TokenProfile
		for i := range rng.IntN(4) {
			if t.Claims == nil {
				t.Claims = map[string]string{}
			}
			t.Claims[fmt.Sprintf("c%d", i)] = sources[rng.IntN(len(sources))]
		}
		switch rng.IntN(4) {
		case 0:
			t.Allow = AllowList{}
		case 1:
			t.Allow = AllowList{"res1:*", perm()}
		case 2:
			t.Allow = AllowList{"*"}
		}
		if access && rng.IntN(2) == 0 {
			t.Scopes = true
			if rng.IntN(2) == 0 {
				t.ScopePrefix = "api/"
			}
			t.SuppressScopes = []string{"aws.cognito.signin.user.admin"}
		}
		if rng.IntN(3) == 0 {
			t.SuppressClaims = []string{"email"}
		}
		return t
	}
	p.Clients = map[string]ClientProfile{}
	for _, id := range []string{DefaultProfile, "web", "m1"}[:1+rng.IntN(3)] {
		if id == DefaultProfile && rng.IntN(3) == 0 {
			continue // the compiler's own default profile
		}
		p.Clients[id] = ClientProfile{IDToken: token(false), AccessToken: token(true)}
	}
	if rng.IntN(2) == 0 {
		p.Limits = Limits{MaxTokenBytes: 1000 + rng.IntN(3000), OnOverflow: OverflowRolesOnly}
	}
	return p
}

func dedupe(list []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range list {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// randomSubject draws a subject that uses the policy's names and names it lacks.
func randomSubject(rng *rand.Rand) Subject {
	pick := func(format string, n, max int) []string {
		var out []string
		for range rng.IntN(max + 1) {
			out = append(out, fmt.Sprintf(format, rng.IntN(n)))
		}
		return out
	}
	sub := Subject{
		ClientID:   []string{"web", "m1", "m2", "other", DefaultProfile}[rng.IntN(5)],
		Machine:    rng.IntN(4) == 0,
		Groups:     pick("g%d", 14, 4),
		Roles:      pick("r%02d", 45, 3),
		IdPGroups:  map[string][]string{[]string{"Okta", "Azure", "Other"}[rng.IntN(3)]: []string{"Eng", "Ops", "Nobody"}[:rng.IntN(4)]},
		Attributes: map[string]string{"custom:x": "xv"},
		Scopes:     pick("api/r%02d", 45, 3),
	}
	if rng.IntN(2) == 0 {
		sub.Tenant, sub.TenantRoles, sub.Tenants = "t1", pick("r%02d", 45, 2), []string{"t1", "t2"}
	}
	return sub
}

// TestCompiledRoundTrip: a decoded snapshot resolves every subject exactly
// as the snapshot compiled from the policy does, and keeps what the trigger
// reads besides (limits, tenancy, IdP attribute, role names, closures).
func TestCompiledRoundTrip(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	for i := range 300 {
		p := randomPolicy(rng)
		want, err := Compile(p, "v")
		if err != nil {
			t.Fatalf("policy %d: %v", i, err)
		}
		data := EncodeSnapshot(want, "label")
		got, err := DecodeSnapshot(data, "v")
		if err != nil {
			t.Fatalf("policy %d: decode: %v", i, err)
		}
		if CompiledLabel(data) != "label" || got.Version() != "v" {
			t.Fatalf("label %q, version %q", CompiledLabel(data), got.Version())
		}
		if got.Limits() != want.Limits() || got.Tenancy() != want.Tenancy() || !cmp.Equal(got.IdPGroups(), want.IdPGroups()) {
			t.Fatalf("policy %d: limits, tenancy or IdP attribute differ", i)
		}
		for name := range p.Roles {
			wr, wp := want.Expand([]string{name})
			gr, gp := got.Expand([]string{name})
			if !got.HasRole(name) || !cmp.Equal(wr, gr) || !cmp.Equal(wp, gp) {
				t.Fatalf("policy %d: role %s: closure differs", i, name)
			}
		}
		for range 40 {
			sub := randomSubject(rng)
			if diff := cmp.Diff(want.Resolve(sub), got.Resolve(sub)); diff != "" {
				t.Fatalf("policy %d, subject %+v (-compiled +decoded):\n%s", i, sub, diff)
			}
		}
		// Encoding is a function of the policy: the same bytes again.
		if again := EncodeSnapshot(got, "label"); !bytes.Equal(again, data) {
			t.Fatalf("policy %d: re-encoding the decoded snapshot gives other bytes", i)
		}
	}
}

func TestCompiledRefusesDamage(t *testing.T) {
	data := EncodeSnapshot(mustCompile(t, testPolicy()), "label")
	if _, err := DecodeSnapshot(data, "v"); err != nil {
		t.Fatal(err)
	}
	t.Run("truncated", func(t *testing.T) {
		for n := 0; n < len(data); n++ {
			if _, err := DecodeSnapshot(data[:n], "v"); !errors.Is(err, ErrSnapshotDamaged) {
				t.Fatalf("%d of %d bytes: %v", n, len(data), err)
			}
		}
	})
	t.Run("a byte changed", func(t *testing.T) {
		for i := len(SnapshotMagic) + 2; i < len(data); i++ {
			bad := bytes.Clone(data)
			bad[i] ^= 0x20
			if _, err := DecodeSnapshot(bad, "v"); !errors.Is(err, ErrSnapshotDamaged) {
				t.Fatalf("byte %d changed: %v", i, err)
			}
		}
	})
	t.Run("bytes appended", func(t *testing.T) {
		if _, err := DecodeSnapshot(append(bytes.Clone(data), 0), "v"); !errors.Is(err, ErrSnapshotDamaged) {
			t.Fatal(err)
		}
	})
	t.Run("a YAML policy", func(t *testing.T) {
		if _, err := DecodeSnapshot([]byte("roles: {}\n"), "v"); !errors.Is(err, ErrSnapshotDamaged) {
			t.Fatal(err)
		}
	})
	t.Run("older and newer formats", func(t *testing.T) {
		for _, f := range []uint16{0, SnapshotFormat - 1, SnapshotFormat + 1} {
			if f == SnapshotFormat {
				continue
			}
			old := bytes.Clone(data)
			binary.BigEndian.PutUint16(old[len(SnapshotMagic):], f)
			_, err := DecodeSnapshot(old, "v")
			if !errors.Is(err, ErrSnapshotFormat) {
				t.Fatalf("format %d: %v", f, err)
			}
			if !bytes.Contains([]byte(err.Error()), []byte("run pretoken apply")) {
				t.Fatalf("format %d: %v does not say what to do", f, err)
			}
		}
	})
}

// TestCompiledRefusesWellFormedNonsense: a payload whose checksum matches
// but whose content is not a snapshot (ids out of range, unsorted names,
// counts beyond the input) is refused, not served and not a panic.
func TestCompiledRefusesWellFormedNonsense(t *testing.T) {
	seal := func(payload []byte) []byte {
		out := make([]byte, headerLen)
		copy(out, SnapshotMagic)
		binary.BigEndian.PutUint16(out[len(SnapshotMagic):], SnapshotFormat)
		binary.BigEndian.PutUint32(out[len(SnapshotMagic)+2:], uint32(len(payload)))
		sum := sha256.Sum256(payload)
		copy(out[len(SnapshotMagic)+6:], sum[:])
		return append(out, payload...)
	}
	good := EncodeSnapshot(mustCompile(t, testPolicy()), "label")[headerLen:]
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		bad := bytes.Clone(good)
		for range 1 + rng.IntN(3) {
			bad[rng.IntN(len(bad))] = byte(rng.IntN(256))
		}
		bad = bad[:len(bad)-rng.IntN(3)]
		s, err := DecodeSnapshot(seal(bad), "v")
		if err == nil {
			// A change can still be a valid snapshot; it must then serve.
			s.Resolve(Subject{ClientID: "narrow", Groups: []string{"admins", "chain"}, Roles: []string{"a"}})
			continue
		}
		if !errors.Is(err, ErrSnapshotDamaged) {
			t.Fatal(err)
		}
	}
}

func FuzzDecodeSnapshot(f *testing.F) {
	f.Add(EncodeSnapshot(mustCompile(f, testPolicy()), "label"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if s, err := DecodeSnapshot(data, "v"); err == nil {
			s.Resolve(Subject{ClientID: "narrow", Groups: []string{"admins"}})
		}
	})
}

// TestNameIndex: every name is found at its position, names not in the
// list are not, whatever the list's size.
func TestNameIndex(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 100, 5000} {
		var names []string
		for i := range n {
			names = append(names, fmt.Sprintf("g%06d", i))
		}
		x := newNameIndex(names)
		for i, name := range names {
			if at, ok := x.find(name); !ok || at != i {
				t.Fatalf("%d names: %s found at %d, %v", n, name, at, ok)
			}
		}
		for _, name := range []string{"", "g", "g0000000", "G000000", "x"} {
			if _, ok := x.find(name); ok {
				t.Fatalf("%d names: found %q", n, name)
			}
		}
	}
}
