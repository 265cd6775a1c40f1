package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/alecthomas/kong"

	"github.com/robust-go/robust/evaluate"
)

// docCommands returns the robust command lines of the fenced code blocks
// of a Markdown file, continuation lines joined.
func docCommands(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cmds []string
	inCode, cont := false, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "```") {
			inCode = !inCode
			continue
		}
		if !inCode {
			continue
		}
		if cont {
			cmds[len(cmds)-1] += " " + strings.TrimSuffix(line, "\\")
			cont = strings.HasSuffix(line, "\\")
			continue
		}
		line = strings.TrimPrefix(strings.TrimPrefix(line, "- "), "run: ")
		if strings.HasPrefix(line, "robust ") {
			cmds = append(cmds, strings.TrimSuffix(line, "\\"))
			cont = strings.HasSuffix(line, "\\")
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return cmds
}

// shellWords splits a command line as a POSIX shell would (single and
// double quotes; $VAR and ${VAR} from env outside single quotes; GitHub's
// ${{ matrix.shard }} too), leaving globs as they are. An unknown variable
// is an error.
func shellWords(line string, env map[string]string) ([]string, error) {
	line = strings.ReplaceAll(line, "${{ matrix.shard }}", env["matrix.shard"])
	var words []string
	var word, seg strings.Builder
	inWord := false
	var quote rune
	var missing []string
	endSeg := func(literal bool) {
		s := seg.String()
		seg.Reset()
		if !literal {
			s = os.Expand(s, func(k string) string {
				v, ok := env[k]
				if !ok {
					missing = append(missing, k)
				}
				return v
			})
		}
		word.WriteString(s)
	}
	for _, c := range line {
		switch {
		case quote == '\'':
			if c == '\'' {
				endSeg(true)
				quote = 0
			} else {
				seg.WriteRune(c)
			}
		case quote == '"':
			if c == '"' {
				endSeg(false)
				quote = 0
			} else {
				seg.WriteRune(c)
			}
		case c == '\'' || c == '"':
			endSeg(false)
			quote, inWord = c, true
		case c == ' ' || c == '\t':
			endSeg(false)
			if inWord {
				words = append(words, word.String())
			}
			word.Reset()
			inWord = false
		default:
			seg.WriteRune(c)
			inWord = true
		}
	}
	endSeg(false)
	if inWord {
		words = append(words, word.String())
	}
	if quote != 0 || len(missing) > 0 {
		return nil, fmt.Errorf("unclosed quote or unknown variables %v", missing)
	}
	return words, nil
}

// TestDocCommands checks that every robust command line of the sharding
// examples (Kubernetes, Slurm, GitHub Actions) parses with robust's
// command line, and that the evaluations' flags and gates are consistent
// (suite, ε, shard, output), without running anything.
func TestDocCommands(t *testing.T) {
	env := map[string]string{
		"JOB_COMPLETION_INDEX": "1", "SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "8",
		"HOME": "/home/user", "GITHUB_STEP_SUMMARY": "/tmp/summary.md", "matrix.shard": "1",
	}
	for k, v := range env {
		if !strings.Contains(k, ".") {
			t.Setenv(k, v)
		}
	}
	t.Setenv("SLURM_ARRAY_TASK_MIN", "1")
	t.Setenv("SLURM_ARRAY_TASK_STEP", "1")
	cmds := docCommands(t, filepath.Join("..", "..", "docs", "sharding.md"))
	kinds := map[string]int{}
	for _, line := range cmds {
		args, err := shellWords(line, env)
		if err != nil {
			t.Errorf("%s: %v", line, err)
			continue
		}
		cli := newCLI(io.Discard, io.Discard)
		exitCode := -1
		// The files the examples name exist on the cluster, not here.
		anyPath := kong.MapperFunc(func(ctx *kong.DecodeContext, target reflect.Value) error {
			if target.Kind() != reflect.Slice {
				return ctx.Scan.PopValueInto("path", target.Addr().Interface())
			}
			for _, tok := range ctx.Scan.PopWhile(func(t kong.Token) bool { return t.IsValue() }) {
				target.Set(reflect.Append(target, reflect.ValueOf(fmt.Sprint(tok.Value))))
			}
			return nil
		})
		parser, err := cli.parser(&exitCode, kong.NamedMapper("existingfile", anyPath))
		if err != nil {
			t.Fatal(err)
		}
		kctx, err := parser.Parse(args[1:])
		if err != nil || exitCode >= 0 {
			t.Errorf("%s\ndoes not parse: %v", line, err)
			continue
		}
		kind := strings.Fields(kctx.Command())[0]
		kinds[kind]++
		switch kind {
		case "eval":
			if _, _, err := cli.Eval.plan(); err != nil {
				t.Errorf("%s\n%v", line, err)
			}
			if cli.Eval.JSON == "" || (cli.Eval.Shard == "" && cli.Eval.Shards == 0) {
				t.Errorf("%s\nis not a shard writing its report", line)
			}
		case "merge":
			if cli.Merge.FailUnder != "" {
				if _, err := evaluate.ParseGates(cli.Merge.FailUnder); err != nil {
					t.Errorf("%s\n%v", line, err)
				}
			}
		default:
			t.Errorf("%s\nunexpected command %s", line, kind)
		}
	}
	if kinds["eval"] < 4 || kinds["merge"] < 4 {
		t.Errorf("found %d eval and %d merge command lines in docs/sharding.md, want 4 of each (intro, Kubernetes, Slurm, GitHub Actions)", kinds["eval"], kinds["merge"])
	}
}
