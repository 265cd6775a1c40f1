package dataset

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
)

// BenchmarkLoadResident loads a data set once per iteration and reports the
// heap it keeps alive (MB-held: live heap after a GC with the data set still
// referenced, less the live heap before loading) and the process's peak
// resident set (MB-peak-rss, VmHWM; meaningful when the sub-benchmark runs
// alone in its process: go test -run ^$ -bench LoadResident/cifar -benchtime 1x).
func BenchmarkLoadResident(b *testing.B) {
	cifarDir := b.TempDir()
	cases := []struct {
		name string
		load func(b *testing.B) *Dataset
	}{
		{"fashion-mnist", func(b *testing.B) *Dataset {
			if _, err := os.Stat(DebianFashionMNISTDir); err != nil {
				b.Skip(err)
			}
			d, err := LoadFashionMNIST(DebianFashionMNISTDir, true)
			if err != nil {
				b.Fatal(err)
			}
			return d
		}},
		{"cifar-shaped", func(b *testing.B) *Dataset {
			// Five CIFAR-10 training batches' worth of records (50,000).
			paths := make([]string, 5)
			for i := range paths {
				paths[i] = filepath.Join(cifarDir, "data_batch_"+strconv.Itoa(i+1)+".bin")
				if _, err := os.Stat(paths[i]); err == nil {
					continue
				}
				rec := make([]byte, 10000*(1+cifarImageBytes))
				for j := range rec {
					rec[j] = byte(j * 31 >> 3)
				}
				for r := range 10000 {
					rec[r*(1+cifarImageBytes)] = byte(r % 10)
				}
				if err := os.WriteFile(paths[i], rec, 0o644); err != nil {
					b.Fatal(err)
				}
			}
			d, err := LoadCIFARFiles(false, paths...)
			if err != nil {
				b.Fatal(err)
			}
			return d
		}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			var held float64
			for b.Loop() {
				before := liveHeap()
				d := c.load(b)
				held = float64(liveHeap()-before) / (1 << 20)
				runtime.KeepAlive(d)
			}
			b.ReportMetric(held, "MB-held")
			if hwm, ok := peakRSS(); ok {
				b.ReportMetric(float64(hwm)/(1<<20), "MB-peak-rss")
			}
		})
	}
}

// liveHeap returns the bytes of live heap objects after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// peakRSS returns the process's peak resident set size (Linux VmHWM).
func peakRSS() (uint64, bool) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := bytes.CutPrefix(sc.Bytes(), []byte("VmHWM:")); ok {
			kb, err := strconv.ParseUint(string(bytes.TrimSuffix(bytes.TrimSpace(v), []byte(" kB"))), 10, 64)
			return kb << 10, err == nil
		}
	}
	return 0, false
}
