package main

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pretoken/pretoken/internal/loopback"
	"github.com/pretoken/pretoken/permissions"
	"github.com/pretoken/pretoken/permissions/dynamo"
)

//go:embed console
var consoleFiles embed.FS

type consoleCmd struct {
	policyArg
	Table string `env:"PRETOKEN_TABLE" placeholder:"NAME" help:"Show the live policy, history, users and tenants of this table."`
	Addr  string `default:"127.0.0.1:0" placeholder:"HOST:PORT" help:"Where to listen: a loopback address only."`
}

func (c *consoleCmd) Run(e *env) error {
	if _, err := c.path(); err != nil {
		return err
	}
	if c.File != "" && c.Table != "" && c.Table != os.Getenv("PRETOKEN_TABLE") {
		return usagef("show a policy file (-f) or a table (--table), not both")
	}
	if c.File != "" {
		c.Table = "" // the file wins over PRETOKEN_TABLE
	}
	if c.File == "" && c.Table == "" {
		return usagef("name what to show: a policy file (pretoken console FILE, or -f FILE), or --table NAME (or PRETOKEN_TABLE)")
	}
	host, _, err := net.SplitHostPort(c.Addr)
	if err != nil || !loopback.Host(host) {
		return usagef("--addr %q: the console listens on a loopback address only (127.0.0.1:PORT)", c.Addr)
	}
	ctx := context.Background()
	src := consoleSource{policyFile: c.File}
	if c.Table != "" {
		if src.store, err = (tableFlag{Table: c.Table}).store(ctx, e); err != nil {
			return err
		}
	}
	snap, err := src.snapshot(ctx)
	if err != nil {
		return err
	}
	if src.store == nil {
		src.file = snap
	}
	l, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return err
	}
	secret := make([]byte, 16)
	_, _ = rand.Read(secret)
	h := newConsole(src, hex.EncodeToString(secret), l.Addr().String())
	fmt.Fprintf(e.stdout, "pretoken console: http://%s/%s/\n(read-only; loopback only; the address is the key: share it with no one; Ctrl-C stops it)\n", l.Addr(), hex.EncodeToString(secret))
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt)
		<-sig
		srv.Close()
	}()
	if err := srv.Serve(l); err != http.ErrServerClosed {
		return err
	}
	return nil
}

// consoleSource is what the console shows: a policy file (read once), or
// a table (read for every view, so the console shows the live policy).
type consoleSource struct {
	policyFile string
	store      *dynamo.Store
	file       *permissions.Snapshot
}

func (s consoleSource) snapshot(ctx context.Context) (*permissions.Snapshot, error) {
	switch {
	case s.file != nil:
		return s.file, nil
	case s.store == nil:
		return loadPolicy(s.policyFile)
	}
	return loadTable(ctx, s.store)
}

// newConsole serves the console's page and its read-only API under
// /<secret>/, to requests whose Host is the address it listens on (a
// page of another site, or a DNS name rebound to loopback, cannot read it).
func newConsole(src consoleSource, secret, addr string) http.Handler {
	_, port, _ := net.SplitHostPort(addr)
	hosts := []string{addr, "localhost:" + port, "127.0.0.1:" + port}
	static, _ := fs.Sub(consoleFiles, "console")
	mux := http.NewServeMux()
	prefix := "/" + secret
	mux.Handle(prefix+"/", http.StripPrefix(prefix, http.FileServerFS(static)))
	api := func(path string, f func(r *http.Request) (any, error)) {
		mux.HandleFunc(prefix+"/api/"+path, func(w http.ResponseWriter, r *http.Request) {
			v, err := f(r)
			w.Header().Set("Content-Type", "application/json")
			if err != nil {
				w.WriteHeader(http.StatusBadRequest)
				v = map[string]string{"error": err.Error()}
			}
			json.NewEncoder(w).Encode(v)
		})
	}
	api("model", func(r *http.Request) (any, error) { return src.model(r.Context()) })
	api("who", func(r *http.Request) (any, error) { return src.who(r.Context(), r.URL.Query().Get("permission")) })
	api("preview", func(r *http.Request) (any, error) { return src.preview(r.Context(), r) })
	api("history", func(r *http.Request) (any, error) {
		if src.store == nil {
			return nil, fmt.Errorf("history lives in a table: start the console with --table")
		}
		return src.store.History(r.Context(), 200, time.Time{})
	})
	api("diff", func(r *http.Request) (any, error) {
		if src.store == nil {
			return nil, fmt.Errorf("versions live in a table: start the console with --table")
		}
		return src.diff(r.Context(), r.URL.Query().Get("from"), r.URL.Query().Get("to"))
	})
	api("user", func(r *http.Request) (any, error) {
		if src.store == nil {
			return nil, fmt.Errorf("users live in a table: start the console with --table")
		}
		return src.store.User(r.Context(), r.URL.Query().Get("sub"))
	})
	api("tenant", func(r *http.Request) (any, error) {
		if src.store == nil {
			return nil, fmt.Errorf("tenants live in a table: start the console with --table")
		}
		return src.store.TenantMembers(r.Context(), r.URL.Query().Get("id"))
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("Referrer-Policy", "no-referrer") // the secret is in the URL
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
		switch {
		case !slices.Contains(hosts, r.Host):
			http.Error(w, "wrong host", http.StatusMisdirectedRequest)
		case r.Method != http.MethodGet:
			http.Error(w, "the console is read-only", http.StatusMethodNotAllowed)
		case r.URL.Path != prefix+"/" && !strings.HasPrefix(r.URL.Path, prefix+"/"):
			http.NotFound(w, r)
		default:
			mux.ServeHTTP(w, r)
		}
	})
}

// roleView is one role in the matrix: its own permissions, and each
// inherited one with the role it comes through.
type roleView struct {
	Name        string            `json:"name"`
	Description string            `json:"description,omitempty"`
	Direct      []string          `json:"direct"`
	Inherited   map[string]string `json:"inherited"` // permission -> the role that grants it directly
	Inherits    []string          `json:"inherits,omitempty"`
}

type modelView struct {
	Version     string              `json:"version"`
	Permissions []string            `json:"permissions"`
	Roles       []roleView          `json:"roles"`
	Groups      map[string][]string `json:"groups"`
	IdPGroups   map[string][]string `json:"idpGroups"` // "<provider> <group>" -> roles
	Defaults    []string            `json:"defaults"`
	Machines    map[string][]string `json:"machines"`
	Clients     []string            `json:"clients"`
	Tenancy     string              `json:"tenancy"`
	Table       bool                `json:"table"`
	Budget      int                 `json:"budget"`
	Profiles    []profileView       `json:"profiles"`
}

// profileView is what one app client's tokens carry, from its profile:
// the profile as written, and the permissions that pass each token's
// allow-list (as scopes or in a permissions claim).
type profileView struct {
	Client      string    `json:"client"`
	IDToken     tokenView `json:"idToken"`
	AccessToken tokenView `json:"accessToken"`
}

type tokenView struct {
	permissions.TokenProfile
	AllowAbsent bool     `json:"allowAbsent"`
	Reaching    []string `json:"reaching"`
}

func profiles(p *permissions.Policy, perms []string) []profileView {
	view := func(t permissions.TokenProfile) tokenView {
		v := tokenView{TokenProfile: t, AllowAbsent: t.Allow == nil, Reaching: []string{}}
		for _, perm := range perms {
			if t.Allow.Admits(perm) {
				v.Reaching = append(v.Reaching, perm)
			}
		}
		return v
	}
	ids := slices.Sorted(maps.Keys(p.Clients))
	if !slices.Contains(ids, permissions.DefaultProfile) {
		ids = append([]string{permissions.DefaultProfile}, ids...) // the empty default serves every client not listed
	}
	var out []profileView
	for _, id := range ids {
		c := p.Clients[id]
		out = append(out, profileView{Client: id, IDToken: view(c.IDToken), AccessToken: view(c.AccessToken)})
	}
	return out
}

func (s consoleSource) model(ctx context.Context) (modelView, error) {
	snap, err := s.snapshot(ctx)
	if err != nil {
		return modelView{}, err
	}
	p := snap.Policy()
	m := modelView{Version: snap.Version(), Groups: p.Groups, IdPGroups: idpView(p.IdPGroups), Defaults: p.Defaults.Roles,
		Machines: p.Machines, Clients: slices.Sorted(maps.Keys(p.Clients)), Tenancy: p.Tenancy.Active, Table: s.store != nil,
		Budget: snap.Limits().MaxTokenBytes}
	perms := map[string]bool{}
	for _, name := range slices.Sorted(maps.Keys(p.Roles)) {
		r := p.Roles[name]
		v := roleView{Name: name, Description: r.Description, Direct: r.Permissions, Inherits: r.Inherits, Inherited: map[string]string{}}
		for _, perm := range r.Permissions {
			perms[perm] = true
		}
		// Breadth first over the inherited roles: the nearest one that grants a permission is named.
		seen := map[string]bool{name: true}
		queue := slices.Clone(r.Inherits)
		for len(queue) > 0 {
			parent := queue[0]
			queue = queue[1:]
			if seen[parent] {
				continue
			}
			seen[parent] = true
			for _, perm := range p.Roles[parent].Permissions {
				if _, ok := v.Inherited[perm]; !ok && !slices.Contains(r.Permissions, perm) {
					v.Inherited[perm] = parent
				}
			}
			queue = append(queue, p.Roles[parent].Inherits...)
		}
		m.Roles = append(m.Roles, v)
	}
	m.Permissions = slices.Sorted(maps.Keys(perms))
	m.Profiles = profiles(p, m.Permissions)
	return m, nil
}

// path is one way a permission reaches a token: from a source (a group, the
// defaults, an IdP group, a machine client, a direct assignment or a
// membership) through a chain of roles.
type path struct {
	From  string   `json:"from"`
	Roles []string `json:"roles"` // the source's role first, the one granting the permission last
}

// who lists every path to permission perm.
func (s consoleSource) who(ctx context.Context, perm string) ([]path, error) {
	snap, err := s.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	p := snap.Policy()
	// chains[r] is a shortest inheritance chain from role r to a role that
	// grants perm directly.
	chains := map[string][]string{}
	var chain func(r string, seen map[string]bool) []string
	chain = func(r string, seen map[string]bool) []string {
		if c, ok := chains[r]; ok {
			return c
		}
		if slices.Contains(p.Roles[r].Permissions, perm) {
			return []string{r}
		}
		var best []string
		for _, parent := range p.Roles[r].Inherits {
			if seen[parent] {
				continue
			}
			seen[parent] = true
			if c := chain(parent, seen); c != nil && (best == nil || len(c)+1 < len(best)) {
				best = append([]string{r}, c...)
			}
		}
		return best
	}
	for _, r := range slices.Sorted(maps.Keys(p.Roles)) {
		if c := chain(r, map[string]bool{r: true}); c != nil {
			chains[r] = c
		}
	}
	var out []path
	add := func(from string, roles []string) {
		for _, r := range roles {
			if c, ok := chains[r]; ok {
				out = append(out, path{From: from, Roles: c})
			}
		}
	}
	for _, g := range slices.Sorted(maps.Keys(p.Groups)) {
		add("group "+g, p.Groups[g])
	}
	add("default roles (every signed-in user)", p.Defaults.Roles)
	idp := idpView(p.IdPGroups)
	for _, g := range slices.Sorted(maps.Keys(idp)) {
		add("IdP group "+g, idp[g])
	}
	for _, m := range slices.Sorted(maps.Keys(p.Machines)) {
		add("machine client "+m, p.Machines[m])
	}
	for _, r := range slices.Sorted(maps.Keys(chains)) {
		add("a direct assignment or a tenant membership", []string{r})
	}
	return out, nil
}

// diff is what changed in the policy from version from to version to: the
// changes the audit trail recorded for each apply in between, oldest first.
// (Superseded versions are not kept; their changes are.)
func (s consoleSource) diff(ctx context.Context, from, to string) ([]string, error) {
	a, errA := strconv.Atoi(from)
	b, errB := strconv.Atoi(to)
	if errA != nil || errB != nil || a >= b {
		return nil, fmt.Errorf("give two policy versions, the older first")
	}
	recs, err := s.store.History(ctx, 0, time.Time{})
	if err != nil {
		return nil, err
	}
	var out []string
	for i := len(recs) - 1; i >= 0; i-- {
		r := recs[i]
		o, _ := strconv.Atoi(r.OldVersion)
		n, err := strconv.Atoi(r.NewVersion)
		if !strings.HasPrefix(r.Action, "apply") || err != nil || o < a || n > b {
			continue
		}
		for _, c := range r.Changes {
			out = append(out, fmt.Sprintf("%d -> %d  %s", o, n, c))
		}
	}
	return out, nil
}

// preview answers a token preview by the path explain takes.
func (s consoleSource) preview(ctx context.Context, r *http.Request) (any, error) {
	q := r.URL.Query()
	c := explainCmd{policyArg: policyArg{File: s.policyFile}, Client: q.Get("client"), Group: nonEmpty(q["group"]),
		User: q.Get("user"), Tenant: q.Get("tenant"), IdPGroup: nonEmpty(q["idpGroup"]), ClientCredentials: q.Get("machine") == "true",
		Attr: map[string]string{}, Membership: map[string]string{}}
	if s.store != nil {
		c.Table = s.store.Table()
	}
	if err := c.Version.UnmarshalText([]byte(q.Get("version"))); err != nil {
		return nil, err
	}
	if c.Version == "" {
		c.Version = "2"
	}
	for _, kv := range nonEmpty(q["attr"]) {
		k, v, _ := strings.Cut(kv, "=")
		c.Attr[k] = v
	}
	for _, kv := range nonEmpty(q["membership"]) {
		k, v, _ := strings.Cut(kv, "=")
		c.Membership[k] = v
	}
	if c.Client == "" {
		return nil, fmt.Errorf("choose a client")
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	e := &env{}
	h, snap, err := c.handler(ctx, e)
	if err != nil {
		return nil, err
	}
	x, err := h.Explain(ctx, c.event(snap))
	var sb strings.Builder
	if err == nil {
		c.print(&sb, x)
	}
	res := map[string]any{"roles": x.Result.Roles, "permissions": x.Result.Permissions, "tenant": x.Tenant,
		"idTokenBytes": x.IDBytes, "accessTokenBytes": x.AccessBytes, "budget": snap.Limits().MaxTokenBytes, "text": sb.String(),
		"reply": x.Reply}
	if err != nil {
		res["error"] = "the trigger answers: " + err.Error()
	}
	return res, nil
}

func nonEmpty(list []string) []string {
	return slices.DeleteFunc(slices.Clone(list), func(s string) bool { return strings.TrimSpace(s) == "" })
}

// idpView flattens the identity-provider entries to "<provider> <group>" ->
// roles, for the console.
func idpView(list permissions.IdPGroups) map[string][]string {
	out := map[string][]string{}
	for _, g := range list {
		for name, roles := range g.Roles {
			out[g.Provider+" "+name] = roles
		}
	}
	return out
}
