package ort

import (
	"fmt"
	"maps"
	"slices"
	"testing"
)

func TestCUDAProviderOptions(t *testing.T) {
	defaults := map[string]string{
		"device_id": "0", "cudnn_conv_algo_search": "EXHAUSTIVE", "arena_extend_strategy": "kSameAsRequested",
		"do_copy_in_default_stream": "1", "cudnn_conv_use_max_workspace": "1", "use_tf32": "0",
	}
	with := func(kv ...string) map[string]string {
		m := maps.Clone(defaults)
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	for _, tc := range []struct {
		name string
		opts CUDAOptions
		id   int
		want map[string]string // nil: an error
	}{
		{"defaults", CUDAOptions{}, 0, defaults},
		{"device 3", CUDAOptions{}, 3, with("device_id", "3")},
		{"heuristic search", CUDAOptions{ConvAlgoSearch: "HEURISTIC"}, 0, with("cudnn_conv_algo_search", "HEURISTIC")},
		{"power-of-two arena, 8 GiB", CUDAOptions{ArenaExtend: "kNextPowerOfTwo", MemLimit: 8 << 30}, 1,
			with("device_id", "1", "arena_extend_strategy", "kNextPowerOfTwo", "gpu_mem_limit", "8589934592")},
		{"small workspace", CUDAOptions{NoMaxWorkspace: true}, 0, with("cudnn_conv_use_max_workspace", "0")},
		{"bad search", CUDAOptions{ConvAlgoSearch: "exhaustive"}, 0, nil},
		{"bad arena", CUDAOptions{ArenaExtend: "grow"}, 0, nil},
		{"negative limit", CUDAOptions{MemLimit: -1}, 0, nil},
		{"negative device", CUDAOptions{}, -1, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.opts.ProviderOptions(tc.id)
			if tc.want == nil {
				if err == nil {
					t.Fatalf("no error, options %v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got, tc.want) {
				t.Errorf("got %v\nwant %v", got, tc.want)
			}
		})
	}
}

func ExampleCUDAOptions_ProviderOptions() {
	opts, err := CUDAOptions{ConvAlgoSearch: "HEURISTIC", MemLimit: 16 << 30}.ProviderOptions(1)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, k := range slices.Sorted(maps.Keys(opts)) {
		fmt.Printf("%s=%s\n", k, opts[k])
	}
	// Output:
	// arena_extend_strategy=kSameAsRequested
	// cudnn_conv_algo_search=HEURISTIC
	// cudnn_conv_use_max_workspace=1
	// device_id=1
	// do_copy_in_default_stream=1
	// gpu_mem_limit=17179869184
	// use_tf32=0
}
