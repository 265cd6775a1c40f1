package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// flagPattern is a command-line flag such as --ort-lib in a message.
var flagPattern = regexp.MustCompile("(^|[\\s\"'(`])--[a-z]")

// TestLibraryErrorsNameNoFlags checks that no package outside cmd mentions
// a command-line flag in an error: libraries describe the problem, and
// only cmd says which flag to change. It looks at the string literals
// given to fmt.Errorf and errors.New, in Error methods, and in the
// constants and variables those use.
func TestLibraryErrorsNameNoFlags(t *testing.T) {
	root := filepath.Join("..", "..")
	fset := token.NewFileSet()
	checked := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if rel == "cmd" || rel == "scripts" || d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".") && rel != "." {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		checked++
		for _, msg := range errorStrings(f) {
			if flagPattern.MatchString(msg.text) {
				t.Errorf("%s: error string names a flag: %q", fset.Position(msg.pos), msg.text)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 20 {
		t.Fatalf("checked only %d files", checked)
	}
}

type message struct {
	pos  token.Pos
	text string
}

// errorStrings returns the string literals of a file that can end up in
// an error message.
func errorStrings(f *ast.File) []message {
	var out []message
	used := map[string]bool{}
	collect := func(n ast.Node) {
		ast.Inspect(n, func(n ast.Node) bool {
			switch x := n.(type) {
			case *ast.BasicLit:
				if x.Kind == token.STRING {
					if s, err := strconv.Unquote(x.Value); err == nil {
						out = append(out, message{x.Pos(), s})
					}
				}
			case *ast.Ident:
				used[x.Name] = true
			}
			return true
		})
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch x := n.(type) {
		case *ast.CallExpr:
			if sel, ok := x.Fun.(*ast.SelectorExpr); ok {
				if pkg, ok := sel.X.(*ast.Ident); ok && (pkg.Name == "fmt" && sel.Sel.Name == "Errorf" || pkg.Name == "errors" && sel.Sel.Name == "New") {
					for _, a := range x.Args {
						collect(a)
					}
				}
			}
		case *ast.FuncDecl:
			if x.Recv != nil && x.Name.Name == "Error" && x.Body != nil {
				collect(x.Body)
				return false
			}
		}
		return true
	})
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || (g.Tok != token.CONST && g.Tok != token.VAR) {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			for i, name := range vs.Names {
				if used[name.Name] && i < len(vs.Values) {
					collect(vs.Values[i])
				}
			}
		}
	}
	return out
}
