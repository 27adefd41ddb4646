package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestQuickstartRunsAsWritten runs the README's Quickstart as a newcomer
// types it, up to the steps that need more than Go: it builds the CLI with
// the block's own go build line, writes the policy its heredoc shows, runs
// validate and explain with bash in a fresh directory, and checks each
// command's output holds what its comment promises. It fails when a
// quickstart command stops working, or the block grows past 15 lines.
//
// The two make lines are not run here: make demo-dynamo needs Java and the
// npm tools, builds the trigger and starts its own DynamoDB Local and Lambda
// emulator (about a minute on a shared two-core machine, too slow for a unit
// test; it was run by hand when this test was written), and make deploy
// needs an AWS account. The test checks
// that both lines are there and that the Makefile still has those targets
// and the variables the deploy line sets.
func TestQuickstartRunsAsWritten(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatalf("the quickstart is a shell block and needs bash: %v", err)
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	lines := quickstartBlock(t, filepath.Join(root, "README.md"))
	if len(lines) > 15 {
		t.Errorf("the quickstart has %d lines, at most 15 promised", len(lines))
	}

	dir := t.TempDir()
	var sawBuild, sawValidate, sawExplain, sawDemo, sawDeploy, sawPolicy bool
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		cmd, comment, _ := strings.Cut(line, " #")
		cmd, comment = strings.TrimSpace(cmd), strings.TrimSpace(comment)
		switch {
		case cmd == "go build -o bin/pretoken ./cmd/pretoken":
			// Run in the repository, as the README says; only the
			// binary lands in the test's directory instead of bin/.
			sawBuild = true
			build := exec.Command("go", "build", "-o", filepath.Join(dir, "bin", "pretoken"), "./cmd/pretoken")
			build.Dir = root
			if out, err := build.CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", cmd, err, out)
			}
		case strings.Contains(cmd, "<<'EOF'"):
			// A heredoc: the command and its body up to EOF, as one script.
			script := []string{line}
			for i++; i < len(lines) && lines[i] != "EOF"; i++ {
				script = append(script, lines[i])
			}
			if i == len(lines) {
				t.Fatalf("the quickstart's heredoc %q has no EOF line", line)
			}
			script = append(script, "EOF")
			runQuickstart(t, bash, dir, strings.Join(script, "\n"), "")
			sawPolicy = strings.HasPrefix(cmd, "cat > policy.yaml")
		case cmd == "make demo-dynamo":
			sawDemo = true
		case strings.HasPrefix(cmd, "make deploy "):
			sawDeploy = true
			for _, v := range regexp.MustCompile(`\b([A-Z_]+)=`).FindAllStringSubmatch(cmd, -1) {
				makefileHas(t, root, v[1]+" ", "the variable "+v[1]+" the quickstart's deploy line sets")
			}
		case strings.HasPrefix(cmd, "bin/pretoken "):
			sawValidate = sawValidate || strings.HasPrefix(cmd, "bin/pretoken validate ")
			sawExplain = sawExplain || strings.HasPrefix(cmd, "bin/pretoken explain ")
			runQuickstart(t, bash, dir, cmd, comment)
		default:
			t.Errorf("the quickstart has a line this test does not know how to run: %q", line)
		}
	}
	for what, saw := range map[string]bool{
		"go build of the CLI": sawBuild, "a policy file written to policy.yaml": sawPolicy,
		"pretoken validate": sawValidate, "pretoken explain": sawExplain,
		"make demo-dynamo": sawDemo, "make deploy": sawDeploy,
	} {
		if !saw {
			t.Errorf("the quickstart lacks %s", what)
		}
	}
	makefileHas(t, root, "\ndemo-dynamo:", "a demo-dynamo target")
	makefileHas(t, root, "\ndeploy:", "a deploy target")
}

// quickstartBlock returns the lines of the first fenced sh block under the
// README's "## Quickstart" heading.
func quickstartBlock(t *testing.T, readme string) []string {
	t.Helper()
	b, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Quickstart\n")
	if !ok {
		t.Fatal(`README.md has no "## Quickstart" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	_, block, ok := strings.Cut(section, "\n```sh\n")
	if !ok {
		t.Fatal("the README's Quickstart has no ```sh block")
	}
	block, _, ok = strings.Cut(block, "\n```\n")
	if !ok {
		t.Fatal("the README's Quickstart block is not closed")
	}
	return strings.Split(block, "\n")
}

// runQuickstart runs script with bash in dir, where the quickstart's
// bin/pretoken and policy.yaml are, and checks it succeeds and that its
// standard output holds want, the line's comment.
func runQuickstart(t *testing.T, bash, dir, script, want string) {
	t.Helper()
	var out, errOut bytes.Buffer
	c := exec.Command(bash, "-euo", "pipefail", "-c", script)
	c.Dir = dir
	c.Stdout, c.Stderr = &out, &errOut
	if err := c.Run(); err != nil {
		t.Fatalf("quickstart %q: %v\nstdout:\n%s\nstderr:\n%s", script, err, out.String(), errOut.String())
	}
	if want != "" && !strings.Contains(out.String(), want) {
		t.Errorf("quickstart %q: its comment promises %q; stdout:\n%s", script, want, out.String())
	}
	if other := onlyWarnings(errOut.String()); len(other) > 0 {
		t.Errorf("quickstart %q: stderr has more than warnings: %q", script, other)
	}
}

func makefileHas(t *testing.T, root, s, what string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(s)) {
		t.Errorf("the Makefile has no %s (looked for %q)", what, s)
	}
}
