package main

import (
	"fmt"
	"os"

	"github.com/pretoken/pretoken/permissions"
)

// compileCmd writes a policy file's compiled snapshot, for bundling with
// the function (PRETOKEN_POLICY_FILE): a cold container then decodes it
// instead of parsing and compiling the YAML.
type compileCmd struct {
	Path string `arg:"" name:"file" help:"The policy file (YAML)."`
	Out  string `short:"o" required:"" placeholder:"SNAPSHOT" help:"Where to write the compiled snapshot."`
}

func (c *compileCmd) Run(e *env) error {
	data, err := permissions.CompileFile(c.Path)
	if err := reportProblems(e, c.Path, err, ""); err != nil {
		return err
	}
	if err := os.WriteFile(c.Out, data, 0o644); err != nil {
		return fmt.Errorf("write the compiled policy: %w", err)
	}
	fmt.Fprintf(e.stdout, "%s: compiled to %s (%d bytes, label %s)\n", c.Path, c.Out, len(data), permissions.CompiledLabel(data))
	return nil
}
