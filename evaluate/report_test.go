package evaluate

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/robust-go/robust/dataset"
)

// TestSkippedFilesMarkdown checks that the Markdown report lists the first
// maxListedSkipped skipped files and counts the rest, and that the text
// report counts them.
func TestSkippedFilesMarkdown(t *testing.T) {
	var files []dataset.BadFile
	for i := range maxListedSkipped + 5 {
		files = append(files, dataset.BadFile{Path: fmt.Sprintf("c/%02d.jpg", i), Err: "truncated file"})
	}
	r := &Report{Schema: Schema, Model: "m.onnx", Data: "folder/test", Samples: 3, Norm: "linf"}
	r.setSkipped(files)
	var md, text bytes.Buffer
	if err := r.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	last, first := fmt.Sprintf("`c/%02d.jpg`: truncated file", maxListedSkipped-1), fmt.Sprintf("c/%02d.jpg", maxListedSkipped)
	for _, want := range []string{"25 unreadable file(s) were left out", "`c/00.jpg`: truncated file", last, "… and 5 more"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("Markdown lacks %q:\n%s", want, md.String())
		}
	}
	if strings.Contains(md.String(), first) {
		t.Errorf("Markdown lists more than %d files:\n%s", maxListedSkipped, md.String())
	}
	if !strings.Contains(text.String(), "25 unreadable file(s) were left out") {
		t.Errorf("text report does not count the skipped files:\n%s", text.String())
	}
}
