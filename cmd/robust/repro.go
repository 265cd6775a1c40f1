package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"

	"github.com/robust-go/robust/evaluate"
)

// reproduction records the provenance of an evaluation: versions, the
// model file's SHA-256, the data and sample selection and the command.
func (f *ModelFlags) reproduction(g *Globals, lm *loadedModel) (*evaluate.Reproduction, error) {
	sum, err := fileSHA256(f.Model)
	if err != nil {
		return nil, err
	}
	env, err := g.runtime()
	if err != nil {
		return nil, err
	}
	return &evaluate.Reproduction{
		Robust: robustVersion(), ORT: env.Version(), ModelSHA256: sum,
		Data: f.Data, Split: f.Split, Selection: fmt.Sprintf("first %d of %d", lm.data.Len(), lm.total),
		Command: os.Args,
	}, nil
}

// fileSHA256 returns the hex SHA-256 of a file.
func fileSHA256(path string) (string, error) {
	fh, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer fh.Close()
	h := sha256.New()
	if _, err := io.Copy(h, fh); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
