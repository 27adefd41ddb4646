package main

import (
	"archive/zip"
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestZipDir(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{"bootstrap": "binary", "policy.yaml": "roles: {}\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out1, out2 := filepath.Join(t.TempDir(), "a.zip"), filepath.Join(t.TempDir(), "b.zip")
	for _, out := range []string{out1, out2} {
		if err := zipDir(out, dir); err != nil {
			t.Fatal(err)
		}
	}
	b1, _ := os.ReadFile(out1)
	b2, _ := os.ReadFile(out2)
	if !bytes.Equal(b1, b2) {
		t.Error("two zips of the same folder differ")
	}
	r, err := zip.OpenReader(out1)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	modes := map[string]os.FileMode{}
	for _, f := range r.File {
		modes[f.Name] = f.Mode().Perm()
	}
	if modes["bootstrap"] != 0o755 || modes["policy.yaml"] != 0o644 || len(modes) != 2 {
		t.Errorf("zip entries and modes = %v, want bootstrap 0755 and policy.yaml 0644", modes)
	}
}
