package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/pretoken/pretoken/internal/benchdata"
	"github.com/pretoken/pretoken/internal/testenv"
	"github.com/pretoken/pretoken/permissions"
)

const secret = "0123456789abcdef0123456789abcdef"

// consoleServer serves the console for src on a loopback test server and
// returns its page URL.
func consoleServer(t *testing.T, src consoleSource) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	srv.Config.Handler = newConsole(src, secret, srv.Listener.Addr().String())
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL + "/" + secret + "/"
}

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if v != nil {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("%s: %v", url, err)
		}
	}
	return resp.StatusCode
}

func TestConsoleGuards(t *testing.T) {
	page := consoleServer(t, consoleSource{policyFile: examplePolicy})
	base := strings.TrimSuffix(page, secret+"/")
	for _, c := range []struct {
		name, url, host, method string
		want                    int
	}{
		{"the page", page, "", "GET", 200},
		{"no secret", base, "", "GET", 404},
		{"wrong secret", base + "ffffffffffffffffffffffffffffffff/api/model", "", "GET", 404},
		{"another host (DNS rebinding)", page + "api/model", "evil.example:80", "GET", http.StatusMisdirectedRequest},
		{"localhost and the port", page + "api/model", "localhost:" + strings.Split(base, ":")[2][:len(strings.Split(base, ":")[2])-1], "GET", 200},
		{"no writes", page + "api/model", "", "POST", http.StatusMethodNotAllowed},
	} {
		req, _ := http.NewRequest(c.method, c.url, nil)
		if c.host != "" {
			req.Host = c.host
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s: %d, want %d", c.name, resp.StatusCode, c.want)
		}
		if c.want == 200 && (resp.Header.Get("Referrer-Policy") != "no-referrer" || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'self'")) {
			t.Errorf("%s: headers %v", c.name, resp.Header)
		}
	}
	if code, _, errOut := runCLI(t, "console", "--policy", examplePolicy, "--addr", "0.0.0.0:0"); code != exitUsage || !strings.Contains(errOut, "loopback") {
		t.Errorf("console on all interfaces: exit %d, %q", code, errOut)
	}
}

func TestConsoleViews(t *testing.T) {
	page := consoleServer(t, consoleSource{policyFile: examplePolicy})
	var m modelView
	getJSON(t, page+"api/model", &m)
	var admin roleView
	for _, r := range m.Roles {
		if r.Name == "admin" {
			admin = r
		}
	}
	if len(m.Roles) != 5 || admin.Inherited["orders:refund"] != "refunder" || admin.Inherited["orders:read"] != "viewer" || m.Groups["staff"][0] != "editor" {
		t.Errorf("model: %d roles, admin %+v", len(m.Roles), admin)
	}
	var paths []path
	getJSON(t, page+"api/who?permission=orders:refund", &paths)
	want := map[string]bool{"group admins: admin refunder": true, "group support: refunder": true}
	for _, p := range paths {
		delete(want, p.From+": "+strings.Join(p.Roles, " "))
	}
	if len(want) > 0 {
		t.Errorf("who has orders:refund: %+v; missing %v", paths, want)
	}
	var preview struct {
		Text             string
		IDTokenBytes     int `json:"idTokenBytes"`
		AccessTokenBytes int `json:"accessTokenBytes"`
		Budget           int
	}
	getJSON(t, page+"api/preview?client=4webappclient0000&version=2&group=staff", &preview)
	_, explain, _ := runCLI(t, "explain", "--policy", examplePolicy, "--client", "4webappclient0000", "--group", "staff", "--version", "2")
	if preview.Text != explain || preview.AccessTokenBytes == 0 || preview.Budget != 2500 {
		t.Errorf("preview differs from explain:\n%s\n---\n%s", preview.Text, explain)
	}
	var e map[string]string
	if code := getJSON(t, page+"api/history", &e); code != 400 || !strings.Contains(e["error"], "--table") {
		t.Errorf("history of a file: %d %v", code, e)
	}
}

// TestConsoleTableViews: history, users and tenants from DynamoDB Local.
func TestConsoleTableViews(t *testing.T) {
	table := opsTable(t)
	if code, _, errOut := runCLI(t, "assign", "--table", table, "00000000-0000-4000-8000-000000000007", "refunder"); code != 0 {
		t.Fatal(errOut)
	}
	s, err := (tableFlag{Table: table}).store(context.Background(), &env{})
	if err != nil {
		t.Fatal(err)
	}
	page := consoleServer(t, consoleSource{store: s})
	var hist []map[string]any
	getJSON(t, page+"api/history", &hist)
	if len(hist) != 2 || hist[0]["action"] != "assign" || hist[1]["action"] != "apply" {
		t.Errorf("history: %v", hist)
	}
	changed := policyFile(t, func(p *permissions.Policy) { p.Groups["staff"] = []string{"refunder"} })
	if code, _, errOut := runCLI(t, "apply", "--table", table, "-f", changed); code != 0 {
		t.Fatal(errOut)
	}
	var diff []string
	getJSON(t, page+"api/diff?from=1&to=2", &diff)
	if len(diff) != 1 || diff[0] != "1 -> 2  ~ group staff: +roles refunder; -roles editor" {
		t.Errorf("diff 1..2: %q", diff)
	}
	var u permissions.User
	getJSON(t, page+"api/user?sub=00000000-0000-4000-8000-000000000007", &u)
	if len(u.Roles) != 1 || u.Roles[0] != "refunder" {
		t.Errorf("user: %+v", u)
	}
	var members []map[string]any
	if code := getJSON(t, page+"api/tenant?id=acme", &members); code != 200 {
		t.Errorf("tenant: %d", code)
	}
	var preview map[string]any
	getJSON(t, page+"api/preview?client=4webappclient0000&user=00000000-0000-4000-8000-000000000007", &preview)
	if !strings.Contains(preview["text"].(string), "assigned:     refunder") {
		t.Errorf("preview with a user: %v", preview["text"])
	}
}

// TestConsoleInChromium drives the page in headless Chromium: search a
// permission, read the matrix, run a token preview and compare it with
// pretoken explain, and time a 10,000-role policy. Screenshots go to the
// test's output folder (PRETOKEN_TEST_SCREENSHOTS, or a temporary one).
func TestConsoleInChromium(t *testing.T) {
	browser := testenv.Need(t, "PRETOKEN_TEST_CHROMIUM", "Chromium (make test installs Debian's chromium)")
	shots := os.Getenv("PRETOKEN_TEST_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1400, 900))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	// eval runs JavaScript in the page (awaiting a promise) and returns its value.
	eval := func(js string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		return v
	}
	// until polls for a condition in the page.
	const until = `new Promise((ok, fail) => { const t0 = Date.now(); const f = () => { if (COND) ok("yes"); else if (Date.now() - t0 > 20000) fail("timed out"); else setTimeout(f, 25); }; f(); })`
	wait := func(cond string) { eval(strings.ReplaceAll(until, "COND", cond)) }
	shot := func(name string) {
		b, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(shots, name), b, 0o644)
	}
	navigate := func(url string) {
		if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
			t.Fatal(err)
		}
		wait(`document.body.dataset.ready`)
	}

	exampleSnap, err := loadPolicy(examplePolicy)
	if err != nil {
		t.Fatal(err)
	}
	navigate(consoleServer(t, consoleSource{policyFile: examplePolicy, file: exampleSnap}))
	// Every cell of the matrix has its borders, granted or not.
	grid := eval(`(() => { const cs = [...document.querySelectorAll("#cells .cell, #cells .blank")];
		const bordered = cs.filter(c => { const st = getComputedStyle(c); return st.borderRightWidth === "1px" && st.borderBottomWidth === "1px" && st.borderRightStyle === "solid"; });
		return cs.length + " " + bordered.length + " " + model.permissions.length * model.roles.length })()`)
	if f := strings.Fields(grid); len(f) != 3 || f[0] != f[2] || f[1] != f[2] {
		t.Errorf("matrix cells drawn, bordered, expected: %s", grid)
	}
	// In file mode the History view offers no version form (versions live in a table) and says why.
	eval(`(document.querySelector('button[data-view="history"]').click(), "")`)
	wait(`document.getElementById("hlist").textContent.length > 0`)
	if form, list := eval(`String(document.getElementById("dform").offsetParent === null)`), eval(`document.getElementById("hlist").textContent`); form != "true" || !strings.Contains(list, "--table") {
		t.Errorf("History in file mode: version form hidden %s, text %q", form, list)
	}
	// App clients: what each client's tokens carry, from its profile.
	eval(`(document.querySelector('button[data-view="clients"]').click(), "")`)
	clients := eval(`[...document.querySelectorAll("#clist .profile")].map(p => p.dataset.client + ": " + [...p.querySelectorAll("dl")].map(dl => dl.innerText.replace(/\s+/g, " ")).join(" | ")).join("\n")`)
	shot("console-clients.png")
	for _, want := range []string{
		"1example23456789: ID token every plan (V1_0 and up) claims app_groups ← groups, app_roles ← roles permissions catalog:read orders:read orders:refund orders:write reports:read users:manage [allow: *]",
		"scopes orders-api/catalog:read orders-api/orders:read orders-api/orders:refund orders-api/orders:write orders-api/reports:read orders-api/users:manage",
		"default: ID token every plan (V1_0 and up) claims app_permissions ← permissions, app_roles ← roles, tenant ← attribute:custom:tenant_id permissions every permission (6)",
		"permissions catalog:read orders:read orders:refund orders:write [allow: orders:* catalog:read] scopes orders-api/catalog:read orders-api/orders:read orders-api/orders:refund orders-api/orders:write suppressed scopes aws.cognito.signin.user.admin",
	} {
		if !strings.Contains(clients, want) {
			t.Errorf("App clients view lacks %q:\n%s", want, clients)
		}
	}
	eval(`(document.querySelector('button[data-view="matrix"]').click(), "")`)
	eval(`(() => { const s = document.getElementById("search"); s.value = "refund"; s.dispatchEvent(new Event("input")); return "" })()`)
	counts := eval(`document.getElementById("counts").textContent`)
	cells := eval(`[...document.querySelectorAll("#cells .cell")].map(c => c.dataset.perm+"/"+c.dataset.role+"/"+c.dataset.kind).sort().join(" ")`)
	eval(`(document.querySelector('.rowh[data-perm="orders:refund"]').click(), "")`)
	wait(`document.querySelectorAll("#who li").length > 0`)
	who := eval(`document.getElementById("who").innerText`)
	shot("console-matrix.png")
	eval(`(() => { document.querySelector('button[data-view="preview"]').click(); document.getElementById("pclient").value = "4webappclient0000";
		document.querySelector('input[name="group"]').value = "staff"; document.querySelector("#pform button").click(); return "" })()`)
	wait(`document.getElementById("ptext").textContent.length > 0`)
	ptext := eval(`document.getElementById("ptext").textContent`)
	sizes := eval(`document.getElementById("psizes").textContent`)
	shot("console-preview.png")

	if counts != "1 permissions × 2 roles" || cells != "orders:refund/admin/inherited orders:refund/refunder/direct" {
		t.Errorf("matrix after searching refund: %q, cells %q", counts, cells)
	}
	if !strings.Contains(who, "group support → refunder → orders:refund") || !strings.Contains(who, "group admins → admin → refunder → orders:refund") {
		t.Errorf("who has orders:refund: %q", who)
	}
	_, explain, _ := runCLI(t, "explain", "--policy", examplePolicy, "--client", "4webappclient0000", "--group", "staff", "--version", "2")
	if strings.TrimSpace(ptext) != strings.TrimSpace(explain) || !strings.Contains(sizes, "budget 2500 bytes") {
		t.Errorf("preview in the page differs from pretoken explain:\n%s\n---\n%s\n(sizes %q)", ptext, explain, sizes)
	}

	// 10,000 roles: the page is usable in under a second.
	var big []byte
	big, err = permissions.MarshalFile(benchdata.Policy(10000), "")
	if err != nil {
		t.Fatal(err)
	}
	bigFile := filepath.Join(t.TempDir(), "big.yaml")
	os.WriteFile(bigFile, big, 0o644)
	start := time.Now()
	bigSnap, err := loadPolicy(bigFile)
	if err != nil {
		t.Fatal(err)
	}
	navigate(consoleServer(t, consoleSource{policyFile: bigFile, file: bigSnap}))
	loaded := time.Since(start)
	ready := eval(`document.body.dataset.ready`)
	drawn := eval(`String(document.querySelectorAll("#cells .c").length)`)
	shot("console-10000-roles.png")
	t.Logf("10,000 roles: matrix drawn %s ms after the navigation started (the browser's clock; %v here, with the test's polling), %s cells drawn", ready, loaded.Round(time.Millisecond), drawn)
	if n, _ := strconv.Atoi(drawn); n == 0 || n > 2000 {
		t.Errorf("%s cells drawn for 10,000 roles: the matrix must draw what is on screen and only that", drawn)
	}

	// On a table: every view has its data.
	table := opsTable(t)
	if code, _, errOut := runCLI(t, "assign", "--table", table, "00000000-0000-4000-8000-000000000008", "refunder", "--tenant", "acme"); code != 0 {
		t.Fatal(errOut)
	}
	store, err := (tableFlag{Table: table}).store(context.Background(), &env{})
	if err != nil {
		t.Fatal(err)
	}
	navigate(consoleServer(t, consoleSource{store: store}))
	eval(`(document.querySelector('button[data-view="history"]').click(), "")`)
	wait(`document.querySelectorAll("#hlist .record").length >= 2`)
	history := eval(`document.getElementById("hlist").innerText`)
	shot("console-history.png")
	eval(`(() => { document.querySelector('button[data-view="users"]').click(); document.querySelector('#uform input').value = "00000000-0000-4000-8000-000000000008";
		document.querySelector("#uform button").click(); document.querySelector('#tform input').value = "acme"; document.querySelector("#tform button").click(); return "" })()`)
	wait(`document.getElementById("utext").textContent.length > 0 && document.getElementById("ttext").textContent.length > 0`)
	user, members := eval(`document.getElementById("utext").textContent`), eval(`document.getElementById("ttext").textContent`)
	shot("console-users.png")
	if !strings.Contains(history, "assign user 00000000-0000-4000-8000-000000000008 tenant acme") || !strings.Contains(history, "+ role admin") {
		t.Errorf("history view: %q", history)
	}
	if !strings.Contains(user, "tenant acme: refunder") || members != "00000000-0000-4000-8000-000000000008  refunder" {
		t.Errorf("users and tenants: %q / %q", user, members)
	}
	t.Logf("screenshots in %s", shots)
}
