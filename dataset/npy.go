package dataset

import (
	"archive/zip"
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/robust-go/robust/internal/liberr"
)

// Array is an n-dimensional array as stored in a NumPy .npy file: C order
// (row-major), Data holding the product of Shape elements (one for a 0-d
// array, Shape empty). Data is one of []float32, []float64, []int8, []int16,
// []int32, []int64, []uint8, []uint16, []uint32, []uint64 or []bool.
type Array struct {
	Shape []int
	Data  any
}

// Size returns the number of elements the shape describes.
func (a Array) Size() int {
	n := 1
	for _, d := range a.Shape {
		n *= d
	}
	return n
}

// dtype describes a supported element type.
type dtype struct {
	kind byte // 'f', 'i', 'u', 'b'
	size int  // bytes per element
}

func (t dtype) String() string {
	names := map[dtype]string{
		{'f', 4}: "float32", {'f', 8}: "float64",
		{'i', 1}: "int8", {'i', 2}: "int16", {'i', 4}: "int32", {'i', 8}: "int64",
		{'u', 1}: "uint8", {'u', 2}: "uint16", {'u', 4}: "uint32", {'u', 8}: "uint64",
		{'b', 1}: "bool",
	}
	if s, ok := names[t]; ok {
		return s
	}
	return fmt.Sprintf("%c%d", t.kind, t.size)
}

// dataDtype returns the dtype and length of a supported Data slice.
func dataDtype(data any) (dtype, int, bool) {
	switch v := data.(type) {
	case []float32:
		return dtype{'f', 4}, len(v), true
	case []float64:
		return dtype{'f', 8}, len(v), true
	case []int8:
		return dtype{'i', 1}, len(v), true
	case []int16:
		return dtype{'i', 2}, len(v), true
	case []int32:
		return dtype{'i', 4}, len(v), true
	case []int64:
		return dtype{'i', 8}, len(v), true
	case []uint8:
		return dtype{'u', 1}, len(v), true
	case []uint16:
		return dtype{'u', 2}, len(v), true
	case []uint32:
		return dtype{'u', 4}, len(v), true
	case []uint64:
		return dtype{'u', 8}, len(v), true
	case []bool:
		return dtype{'b', 1}, len(v), true
	}
	return dtype{}, 0, false
}

// makeData allocates a Data slice of n elements of type t.
func makeData(t dtype, n int) (any, bool) {
	switch t {
	case dtype{'f', 4}:
		return make([]float32, n), true
	case dtype{'f', 8}:
		return make([]float64, n), true
	case dtype{'i', 1}:
		return make([]int8, n), true
	case dtype{'i', 2}:
		return make([]int16, n), true
	case dtype{'i', 4}:
		return make([]int32, n), true
	case dtype{'i', 8}:
		return make([]int64, n), true
	case dtype{'u', 1}:
		return make([]uint8, n), true
	case dtype{'u', 2}:
		return make([]uint16, n), true
	case dtype{'u', 4}:
		return make([]uint32, n), true
	case dtype{'u', 8}:
		return make([]uint64, n), true
	case dtype{'b', 1}:
		return make([]bool, n), true
	}
	return nil, false
}

// descr returns the NumPy type string for t, little-endian.
func (t dtype) descr() string {
	if t.size == 1 {
		return fmt.Sprintf("|%c1", t.kind)
	}
	return fmt.Sprintf("<%c%d", t.kind, t.size)
}

// check verifies that a's data type is supported and matches its shape.
func (a Array) check() (dtype, error) {
	t, n, ok := dataDtype(a.Data)
	if !ok {
		return t, fmt.Errorf("%w: unsupported element type %T", ErrFormat, a.Data)
	}
	for _, d := range a.Shape {
		if d < 0 {
			return t, fmt.Errorf("%w: negative dimension in shape %v", ErrShape, a.Shape)
		}
	}
	if n != a.Size() {
		return t, fmt.Errorf("%w: %d elements for shape %v", ErrShape, n, a.Shape)
	}
	return t, nil
}

var npyMagic = []byte("\x93NUMPY")

// EncodeNPY writes a in NumPy's .npy format (version 1.0, or 2.0 for very
// long headers), little-endian, C order.
func EncodeNPY(w io.Writer, a Array) (err error) {
	defer liberr.Prefix(&err, "dataset")
	return encodeNPY(w, a)
}

// encodeNPY is [EncodeNPY] without the package prefix, for the package's
// own writers.
func encodeNPY(w io.Writer, a Array) error {
	t, err := a.check()
	if err != nil {
		return err
	}
	shape := make([]string, len(a.Shape))
	for i, d := range a.Shape {
		shape[i] = strconv.Itoa(d)
	}
	shapeStr := "(" + strings.Join(shape, ", ")
	if len(shape) == 1 {
		shapeStr += ","
	}
	shapeStr += ")"
	dict := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': %s, }", t.descr(), shapeStr)

	// Pad with spaces and a final newline so the data starts 64-byte aligned.
	version, lenBytes := byte(1), 2
	if len(dict)+1+len(npyMagic)+2+2 > 65535 {
		version, lenBytes = 2, 4
	}
	pre := len(npyMagic) + 2 + lenBytes
	hlen := len(dict) + 1
	hlen += (64 - (pre+hlen)%64) % 64
	hdr := make([]byte, 0, pre+hlen)
	hdr = append(hdr, npyMagic...)
	hdr = append(hdr, version, 0)
	if lenBytes == 2 {
		hdr = binary.LittleEndian.AppendUint16(hdr, uint16(hlen))
	} else {
		hdr = binary.LittleEndian.AppendUint32(hdr, uint32(hlen))
	}
	hdr = append(hdr, dict...)
	for len(hdr) < pre+hlen-1 {
		hdr = append(hdr, ' ')
	}
	hdr = append(hdr, '\n')
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	return writeData(w, a.Data, t.size)
}

// writeData writes the elements of data little-endian, in chunks.
func writeData(w io.Writer, data any, itemSize int) error {
	const chunkBytes = 1 << 20
	per := chunkBytes / itemSize
	n := dataLen(data)
	buf := make([]byte, 0, min(n, per)*itemSize)
	for lo := 0; lo < n; lo += per {
		hi := min(lo+per, n)
		var err error
		buf, err = binary.Append(buf[:0], binary.LittleEndian, sliceData(data, lo, hi))
		if err != nil {
			return err
		}
		if _, err := w.Write(buf); err != nil {
			return err
		}
	}
	return nil
}

func dataLen(data any) int {
	_, n, _ := dataDtype(data)
	return n
}

// sliceData returns data[lo:hi] for a supported Data slice.
func sliceData(data any, lo, hi int) any {
	switch v := data.(type) {
	case []float32:
		return v[lo:hi]
	case []float64:
		return v[lo:hi]
	case []int8:
		return v[lo:hi]
	case []int16:
		return v[lo:hi]
	case []int32:
		return v[lo:hi]
	case []int64:
		return v[lo:hi]
	case []uint8:
		return v[lo:hi]
	case []uint16:
		return v[lo:hi]
	case []uint32:
		return v[lo:hi]
	case []uint64:
		return v[lo:hi]
	case []bool:
		return v[lo:hi]
	}
	panic(fmt.Sprintf("dataset: unsupported array data %T", data))
}

// DecodeNPY reads an .npy stream. size, when positive, is the stream's exact
// length and is used to reject truncated or oversized data before
// allocating; pass 0 when unknown.
func DecodeNPY(r io.Reader, size int64) (_ Array, err error) {
	defer liberr.Prefix(&err, "dataset")
	return decodeNPY(r, size)
}

// decodeNPY is [DecodeNPY] without the package prefix, for the package's
// own readers, which add the file name.
func decodeNPY(r io.Reader, size int64) (Array, error) {
	var pre [8]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return Array{}, truncErr(err, "npy preamble")
	}
	if !bytes.Equal(pre[:6], npyMagic) {
		return Array{}, fmt.Errorf("%w: not an .npy file (magic %q)", ErrFormat, pre[:6])
	}
	var hlen int
	switch pre[6] {
	case 1:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return Array{}, truncErr(err, "npy header length")
		}
		hlen = int(binary.LittleEndian.Uint16(b[:]))
	case 2, 3:
		var b [4]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return Array{}, truncErr(err, "npy header length")
		}
		hlen = int(binary.LittleEndian.Uint32(b[:]))
	default:
		return Array{}, fmt.Errorf("%w: unsupported .npy version %d.%d", ErrFormat, pre[6], pre[7])
	}
	prefix := int64(8 + 2)
	if pre[6] != 1 {
		prefix = 8 + 4
	}
	if size > 0 && int64(hlen) > size-prefix || hlen > 1<<24 {
		return Array{}, fmt.Errorf("%w: npy header length %d exceeds the file", ErrTruncated, hlen)
	}
	hb := make([]byte, hlen)
	if _, err := io.ReadFull(r, hb); err != nil {
		return Array{}, truncErr(err, "npy header")
	}
	t, shape, bigEndian, err := parseNPYHeader(string(hb))
	if err != nil {
		return Array{}, err
	}
	n := int64(1)
	for _, d := range shape {
		if d != 0 && n > (1<<62)/int64(d) {
			return Array{}, fmt.Errorf("%w: shape %v is too large", ErrShape, shape)
		}
		n *= int64(d)
	}
	nbytes := n * int64(t.size)
	if size > 0 {
		avail := size - prefix - int64(hlen)
		if nbytes > avail {
			return Array{}, fmt.Errorf("%w: shape %v of %s needs %d data bytes, file has %d", ErrTruncated, shape, t, nbytes, avail)
		}
		if nbytes < avail {
			return Array{}, fmt.Errorf("%w: %d bytes follow the %d data bytes of shape %v of %s", ErrSizeMismatch, avail-nbytes, nbytes, shape, t)
		}
	}
	var order binary.ByteOrder = binary.LittleEndian
	if bigEndian {
		order = binary.BigEndian
	}
	if size <= 0 {
		// Unknown length: buffer what arrives before allocating for the
		// header's shape, so a corrupt header cannot exhaust memory.
		raw, err := io.ReadAll(io.LimitReader(r, nbytes))
		if err != nil {
			return Array{}, err
		}
		if int64(len(raw)) < nbytes {
			return Array{}, fmt.Errorf("%w: data ends after %d of %d bytes (shape %v of %s)", ErrTruncated, len(raw), nbytes, shape, t)
		}
		r = bytes.NewReader(raw)
	}
	data, _ := makeData(t, int(n))
	if err := readData(r, data, t.size, order); err != nil {
		return Array{}, fmt.Errorf("%w (shape %v of %s)", err, shape, t)
	}
	return Array{Shape: shape, Data: data}, nil
}

func truncErr(err error, what string) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: file ends in the %s", ErrTruncated, what)
	}
	return err
}

// readData fills data from r in chunks.
func readData(r io.Reader, data any, itemSize int, order binary.ByteOrder) error {
	const chunkBytes = 1 << 20
	per := chunkBytes / itemSize
	n := dataLen(data)
	buf := make([]byte, min(n, per)*itemSize)
	for lo := 0; lo < n; lo += per {
		hi := min(lo+per, n)
		b := buf[:(hi-lo)*itemSize]
		if got, err := io.ReadFull(r, b); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return fmt.Errorf("%w: data ends after %d of %d bytes", ErrTruncated, lo*itemSize+got, n*itemSize)
			}
			return err
		}
		if _, err := binary.Decode(b, order, sliceData(data, lo, hi)); err != nil {
			return err
		}
	}
	return nil
}

// parseNPYHeader interprets an .npy header dictionary.
func parseNPYHeader(h string) (t dtype, shape []int, bigEndian bool, err error) {
	p := pyParser{s: strings.TrimRight(h, " \n\x00")}
	v, err := p.parse()
	if err != nil {
		return t, nil, false, fmt.Errorf("%w: npy header %q: %v", ErrFormat, h, err)
	}
	dict, ok := v.(map[string]any)
	if !ok {
		return t, nil, false, fmt.Errorf("%w: npy header %q is not a dict", ErrFormat, h)
	}
	descr, ok1 := dict["descr"].(string)
	fortran, ok2 := dict["fortran_order"].(bool)
	sh, ok3 := dict["shape"].([]int)
	if !ok1 || !ok2 || !ok3 {
		return t, nil, false, fmt.Errorf("%w: npy header %q lacks descr, fortran_order or shape", ErrFormat, h)
	}
	if fortran {
		return t, nil, false, fmt.Errorf("%w: Fortran-order arrays are not supported (save with np.ascontiguousarray)", ErrFormat)
	}
	if len(descr) < 3 {
		return t, nil, false, fmt.Errorf("%w: unsupported dtype %q", ErrFormat, descr)
	}
	size, err := strconv.Atoi(descr[2:])
	t = dtype{kind: descr[1], size: size}
	if _, ok := makeData(t, 0); err != nil || !ok || !strings.ContainsRune("<>|=", rune(descr[0])) {
		return t, nil, false, fmt.Errorf("%w: unsupported dtype %q (want float32/64, (u)int8–64 or bool)", ErrFormat, descr)
	}
	return t, sh, descr[0] == '>' && size > 1, nil
}

// pyParser parses the Python literal subset used by .npy headers: dicts with
// string keys, strings, True/False and tuples of integers.
type pyParser struct {
	s string
	i int
}

func (p *pyParser) parse() (any, error) {
	v, err := p.value()
	if err != nil {
		return nil, err
	}
	p.space()
	if p.i != len(p.s) {
		return nil, fmt.Errorf("trailing text at offset %d", p.i)
	}
	return v, nil
}

func (p *pyParser) space() {
	for p.i < len(p.s) && strings.IndexByte(" \t\n\r", p.s[p.i]) >= 0 {
		p.i++
	}
}

func (p *pyParser) eat(c byte) bool {
	p.space()
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *pyParser) value() (any, error) {
	p.space()
	if p.i >= len(p.s) {
		return nil, errors.New("unexpected end")
	}
	switch c := p.s[p.i]; {
	case c == '{':
		p.i++
		m := map[string]any{}
		for !p.eat('}') {
			k, err := p.value()
			if err != nil {
				return nil, err
			}
			ks, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("non-string key at offset %d", p.i)
			}
			if !p.eat(':') {
				return nil, fmt.Errorf("missing ':' at offset %d", p.i)
			}
			if m[ks], err = p.value(); err != nil {
				return nil, err
			}
			if !p.eat(',') && !p.eat('}') {
				return nil, fmt.Errorf("missing ',' at offset %d", p.i)
			} else if p.s[p.i-1] == '}' {
				break
			}
		}
		return m, nil
	case c == '(':
		p.i++
		t := []int{}
		for !p.eat(')') {
			v, err := p.value()
			if err != nil {
				return nil, err
			}
			d, ok := v.(int)
			if !ok {
				return nil, fmt.Errorf("non-integer in tuple at offset %d", p.i)
			}
			t = append(t, d)
			if !p.eat(',') && !p.eat(')') {
				return nil, fmt.Errorf("missing ',' at offset %d", p.i)
			} else if p.s[p.i-1] == ')' {
				break
			}
		}
		return t, nil
	case c == '\'' || c == '"':
		end := strings.IndexByte(p.s[p.i+1:], c)
		if end < 0 {
			return nil, errors.New("unterminated string")
		}
		s := p.s[p.i+1 : p.i+1+end]
		p.i += end + 2
		return s, nil
	case c >= '0' && c <= '9':
		j := p.i
		for j < len(p.s) && p.s[j] >= '0' && p.s[j] <= '9' {
			j++
		}
		d, err := strconv.Atoi(p.s[p.i:j])
		if err != nil {
			return nil, err
		}
		if j < len(p.s) && p.s[j] == 'L' { // Python 2 long
			j++
		}
		p.i = j
		return d, nil
	case strings.HasPrefix(p.s[p.i:], "True"):
		p.i += 4
		return true, nil
	case strings.HasPrefix(p.s[p.i:], "False"):
		p.i += 5
		return false, nil
	}
	return nil, fmt.Errorf("unexpected %q at offset %d", p.s[p.i], p.i)
}

// ReadNPY reads an .npy file.
func ReadNPY(path string) (_ Array, err error) {
	defer liberr.Prefix(&err, "dataset")
	f, err := os.Open(path)
	if err != nil {
		return Array{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Array{}, err
	}
	a, err := decodeNPY(bufio.NewReaderSize(f, 1<<20), st.Size())
	if err != nil {
		return Array{}, fmt.Errorf("load %s: %w", path, err)
	}
	return a, nil
}

// WriteNPY writes a to an .npy file.
func WriteNPY(path string, a Array) (err error) {
	defer liberr.Prefix(&err, "dataset")
	return writeAtomic(path, func(w io.Writer) error { return encodeNPY(w, a) })
}

// ReadNPZ reads every array of an .npz archive (as written by numpy.savez or
// numpy.savez_compressed), keyed by entry name without ".npy".
func ReadNPZ(path string) (_ map[string]Array, err error) {
	defer liberr.Prefix(&err, "dataset")
	z, err := openNPZ(path)
	if err != nil {
		return nil, err
	}
	defer z.Close()
	out := make(map[string]Array, len(z.entries))
	for key := range z.entries {
		if out[key], err = z.read(key); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// npzFile is an open .npz archive.
type npzFile struct {
	path    string
	zr      *zip.ReadCloser
	entries map[string]*zip.File // by key
}

func openNPZ(path string) (*npzFile, error) {
	zr, err := zip.OpenReader(path)
	if err != nil {
		if errors.Is(err, zip.ErrFormat) {
			err = fmt.Errorf("%w: not a zip (.npz) archive", ErrFormat)
		}
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	z := &npzFile{path: path, zr: zr, entries: map[string]*zip.File{}}
	for _, f := range zr.File {
		if key, ok := strings.CutSuffix(f.Name, ".npy"); ok {
			z.entries[key] = f
		}
	}
	return z, nil
}

func (z *npzFile) Close() error { return z.zr.Close() }

// keys returns the archive's array names, sorted.
func (z *npzFile) keys() []string {
	keys := make([]string, 0, len(z.entries))
	for k := range z.entries {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// read decodes the array named key.
func (z *npzFile) read(key string) (Array, error) {
	f, ok := z.entries[key]
	if !ok {
		return Array{}, fmt.Errorf("load %s: no array %q", z.path, key)
	}
	a, err := readNPZEntry(f)
	if err != nil {
		return Array{}, fmt.Errorf("load %s: array %q: %w", z.path, key, err)
	}
	return a, nil
}

func readNPZEntry(f *zip.File) (Array, error) {
	if f.UncompressedSize64 > 1<<62 || f.UncompressedSize64 > max(f.CompressedSize64, 1<<16)*maxDeflateRatio {
		return Array{}, fmt.Errorf("%w: implausible size %d (compressed %d)", ErrFormat, f.UncompressedSize64, f.CompressedSize64)
	}
	rc, err := f.Open()
	if err != nil {
		return Array{}, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	defer rc.Close()
	a, err := decodeNPY(bufio.NewReaderSize(rc, 1<<20), int64(f.UncompressedSize64))
	if err != nil {
		if errors.Is(err, zip.ErrChecksum) || errors.Is(err, zip.ErrFormat) {
			return Array{}, fmt.Errorf("%w: %v", ErrFormat, err)
		}
		return Array{}, err
	}
	return a, nil
}

// npzTime is the fixed modification time written into .npz entries, so that
// equal arrays give byte-identical files.
var npzTime = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

// WriteNPZ writes arrays to an uncompressed .npz archive (as numpy.savez
// does), one entry "<key>.npy" per array in key order. The file is written
// to a temporary name and renamed into place, so readers never see a partial
// archive.
func WriteNPZ(path string, arrays map[string]Array) (err error) {
	defer liberr.Prefix(&err, "dataset")
	keys := make([]string, 0, len(arrays))
	for k, a := range arrays {
		if k == "" {
			return fmt.Errorf("write %s: empty array name", path)
		}
		if _, err := a.check(); err != nil {
			return fmt.Errorf("write %s: array %q: %w", path, k, err)
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return writeAtomic(path, func(w io.Writer) error {
		zw := zip.NewWriter(w)
		for _, k := range keys {
			ew, err := zw.CreateHeader(&zip.FileHeader{Name: k + ".npy", Method: zip.Store, Modified: npzTime})
			if err != nil {
				return err
			}
			if err := encodeNPY(ew, arrays[k]); err != nil {
				return fmt.Errorf("array %q: %w", k, err)
			}
		}
		return zw.Close()
	})
}

// writeAtomic writes a file through a temporary file in the same directory.
func writeAtomic(path string, write func(io.Writer) error) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, liberr.Bare(err))
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
			err = fmt.Errorf("write %s: %w", path, liberr.Bare(err))
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	if err = write(bw); err != nil {
		return err
	}
	if err = bw.Flush(); err != nil {
		return err
	}
	if err = f.Chmod(0o644); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
