package dataset

import (
	"bufio"
	"compress/flate"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
)

// maxDeflateRatio bounds how much deflate can expand its input (the format's
// limit is about 1032:1). It caps the allocation a corrupt gzip header can
// make us attempt.
const maxDeflateRatio = 1100

// dataFile is an open file whose content is gunzipped transparently.
type dataFile struct {
	f     *os.File
	gz    *gzip.Reader
	r     io.Reader // content (decompressed if gzipped)
	size  int64     // size of the file on disk
	limit int64     // upper bound on the content's length
}

// openDataFile opens path, detecting gzip compression by its magic bytes.
func openDataFile(path string) (*dataFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if st.IsDir() {
		f.Close()
		return nil, fmt.Errorf("%w: is a directory", ErrFormat)
	}
	d := &dataFile{f: f, size: st.Size(), limit: st.Size()}
	br := bufio.NewReaderSize(f, 1<<20)
	magic, _ := br.Peek(2)
	if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		d.gz, err = gzip.NewReader(br)
		if err != nil {
			f.Close()
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, fmt.Errorf("%w: gzip header cut short", ErrTruncated)
			}
			return nil, fmt.Errorf("%w: gzip: %v", ErrFormat, err)
		}
		d.r = d.gz
		d.limit = d.size * maxDeflateRatio
	} else {
		d.r = br
	}
	return d, nil
}

func (d *dataFile) Close() error {
	if d.gz != nil {
		d.gz.Close()
	}
	return d.f.Close()
}

// compressed reports whether the file is gzipped.
func (d *dataFile) compressed() bool { return d.gz != nil }

// readFull fills buf from the content; what names the part being read.
func (d *dataFile) readFull(buf []byte, what string) error {
	n, err := io.ReadFull(d.r, buf)
	if err == nil {
		return nil
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: %s needs %d bytes, only %d present", ErrTruncated, what, len(buf), n)
	}
	return d.readErr(err)
}

// readErr classifies an error from the content reader.
func (d *dataFile) readErr(err error) error {
	var ce flate.CorruptInputError
	if errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader) || errors.As(err, &ce) {
		return fmt.Errorf("%w: corrupt gzip data: %v", ErrFormat, err)
	}
	return err
}

// expectEOF checks that no content follows what has been read; for gzip this
// also verifies the checksum.
func (d *dataFile) expectEOF(announced int64) error {
	extra, err := io.Copy(io.Discard, d.r)
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("%w: gzip stream ends early", ErrTruncated)
		}
		return d.readErr(err)
	}
	if extra > 0 {
		return fmt.Errorf("%w: %d bytes follow the %d announced by the header", ErrSizeMismatch, extra, announced)
	}
	return nil
}

// checkGzip reads the rest of a gzip stream, returning an error wrapping
// ErrFormat if it is corrupt.
func (d *dataFile) checkGzip() error {
	if _, err := io.Copy(io.Discard, d.r); err != nil {
		return d.readErr(err)
	}
	return nil
}

// parallelFor runs fn over [0,n) split into chunks of at least grain
// elements, on up to GOMAXPROCS goroutines.
func parallelFor(n, grain int, fn func(lo, hi int)) {
	workers := min(runtime.GOMAXPROCS(0), (n+grain-1)/grain)
	if workers <= 1 {
		fn(0, n)
		return
	}
	chunk := (n + workers - 1) / workers
	var wg sync.WaitGroup
	for lo := 0; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		wg.Go(func() { fn(lo, hi) })
	}
	wg.Wait()
}

// unitFromBytes converts src to a new []float32 of values b/255.
func unitFromBytes(src []byte) []float32 {
	dst := make([]float32, len(src))
	parallelFor(len(src), 1<<20, func(lo, hi int) { bytesToUnit(dst[lo:hi], src[lo:hi]) })
	return dst
}
