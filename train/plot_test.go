package train

import (
	"bytes"
	"encoding/xml"
	"image/png"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestReadHistory(t *testing.T) {
	f, err := os.Open(filepath.Join("testdata", "log.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h, err := ReadHistory(f)
	if err != nil {
		t.Fatal(err)
	}
	// Three passes; pass 2, logged again after the resume, with its
	// last values.
	if len(h) != 3 {
		t.Fatalf("%d passes, want 3: %+v", len(h), h)
	}
	for i, s := range h {
		if s.Pass != i+1 || s.EpochEquivalents != 4*(i+1) {
			t.Errorf("pass %d: %+v", i+1, s)
		}
	}
	if h[1].Loss != 1.50 || h[1].HeldoutPGD == nil || *h[1].HeldoutPGD != 0.30 {
		t.Errorf("pass 2 kept %+v, want the values logged after the resume", h[1])
	}
	for _, bad := range []string{"{\"event\":\"pass\"\n", "not json\n"} {
		if _, err := ReadHistory(strings.NewReader(bad)); err == nil || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("ReadHistory(%q) = %v, want an error naming line 1", bad, err)
		}
	}
}

func TestWriteCurves(t *testing.T) {
	f, err := os.Open(filepath.Join("testdata", "log.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h, err := ReadHistory(f)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		format string
		// 8×9 inches: 768×864 pixels in PNG, 576×648 points in SVG.
		wantW, wantH string
	}{
		{"png", "768", "864"},
		{"svg", "576pt", "648pt"},
	} {
		var b bytes.Buffer
		if err := WriteCurves(&b, tc.format, h); err != nil {
			t.Fatalf("%s: %v", tc.format, err)
		}
		var w, hgt string
		switch tc.format {
		case "png":
			img, err := png.Decode(&b)
			if err != nil {
				t.Fatalf("png: %v", err)
			}
			w, hgt = strconv.Itoa(img.Bounds().Dx()), strconv.Itoa(img.Bounds().Dy())
		case "svg":
			var root struct {
				Width  string `xml:"width,attr"`
				Height string `xml:"height,attr"`
			}
			if err := xml.Unmarshal(b.Bytes(), &root); err != nil {
				t.Fatalf("svg: %v", err)
			}
			w, hgt = root.Width, root.Height
		}
		if w != tc.wantW || hgt != tc.wantH {
			t.Errorf("%s: %s×%s, want %s×%s", tc.format, w, hgt, tc.wantW, tc.wantH)
		}
	}
	if err := WriteCurves(new(bytes.Buffer), "png", nil); err == nil {
		t.Error("curves of no pass drawn")
	}
	if err := WriteCurves(new(bytes.Buffer), "bmp", h); err == nil {
		t.Error("curves drawn as BMP")
	}
}
