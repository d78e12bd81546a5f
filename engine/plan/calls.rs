//! Static check of everything a template calls: each filter, test, function and method is looked
//! up in what the engine provides ([`callables`]), with its arguments counted, by walking the
//! template's parsed form. What a value is (text, list, map, …) is followed shallowly — params
//! by their declared type, `result.stdout` as text, literals, what a filter returns — so that
//! `result.stdout.split(' ')` is reported as a method strings do not have. Where a value's kind
//! is not known (a macro's argument, say), only names no value has anywhere are reported.

use std::collections::HashMap;

use minijinja::machinery::{self, ast};
use minijinja::value::ValueKind;

use super::callables::{self, FILTERS, FUNCTIONS, Keywords, Kind, LOOP_METHODS, Signature, TESTS};
use super::sites::Site;
use crate::spec::suggest::did_you_mean;
use crate::spec::{ParamType, Runbook};
use crate::template;

/// One mistake, at a place in the site's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Where it starts in the site's text.
    pub offset: usize,
    /// How long the marked text is.
    pub len: usize,
    /// What is wrong.
    pub message: String,
    /// The label under the marked text.
    pub label: String,
    /// How to fix it.
    pub hint: Option<String>,
}

/// What checking one site's calls found.
#[derive(Debug, Default)]
pub struct Calls {
    /// Every mistake.
    pub findings: Vec<Finding>,
    /// Names called as functions that do not exist: reported here, so not reported again as
    /// unknown variables.
    pub unknown_functions: Vec<String>,
}

/// Checks every call in a site. A site that does not parse gives nothing: its syntax error is
/// reported by the check that parses it first.
pub fn check(runbook: &Runbook, site: &Site<'_>) -> Calls {
    let item = site
        .step
        .and_then(|s| s.for_each.as_ref())
        .map(|f| f.as_name.as_str());
    let mut walk = Walk {
        text: site.text,
        runbook,
        item,
        scopes: vec![HashMap::new()],
        macros: Vec::new(),
        loops: Vec::new(),
        out: Calls::default(),
    };
    if site.expression {
        if let Ok(expr) = machinery::parse_expr(site.text) {
            walk.expr(&expr);
        }
    } else if template::has_markup(site.text)
        && let Ok(tree) = machinery::parse(
            site.text,
            "<template>",
            template::environment().syntax().clone(),
        )
    {
        collect_macros(std::slice::from_ref(&tree), &mut walk.macros);
        walk.stmt(&tree);
    }
    walk.out
}

fn collect_macros<'a>(stmts: &[ast::Stmt<'a>], out: &mut Vec<&'a str>) {
    for s in stmts {
        match s {
            ast::Stmt::Template(t) => collect_macros(&t.children, out),
            ast::Stmt::Macro(m) => {
                out.push(m.name);
                collect_macros(&m.body, out);
            }
            ast::Stmt::ForLoop(f) => {
                collect_macros(&f.body, out);
                collect_macros(&f.else_body, out);
            }
            ast::Stmt::IfCond(i) => {
                collect_macros(&i.true_body, out);
                collect_macros(&i.false_body, out);
            }
            ast::Stmt::WithBlock(w) => collect_macros(&w.body, out),
            ast::Stmt::Block(b) => collect_macros(&b.body, out),
            _ => {}
        }
    }
}

/// A filter, test, function or method, for messages and usage lines.
#[derive(Clone, Copy)]
enum Callee {
    Filter,
    Test,
    Function,
    LoopMethod,
}

impl Callee {
    fn noun(self) -> &'static str {
        match self {
            Self::Filter => "filter",
            Self::Test => "test",
            Self::Function => "function",
            Self::LoopMethod => "method",
        }
    }

    fn usage(self, sig: &Signature) -> String {
        match self {
            Self::Filter => format!("… | {}", sig.usage()),
            Self::Test => format!("… is {}", sig.usage()),
            Self::Function => sig.usage(),
            Self::LoopMethod => format!("loop.{}", sig.usage()),
        }
    }
}

struct Walk<'a> {
    text: &'a str,
    runbook: &'a Runbook,
    /// The `as` name of the site's step, when it fans out.
    item: Option<&'a str>,
    /// Names the template binds (`set`, `for`, `with`, macro arguments), innermost last.
    scopes: Vec<HashMap<&'a str, Kind>>,
    macros: Vec<&'a str>,
    /// The `for` loops around the current point: whether each is recursive.
    loops: Vec<bool>,
    out: Calls,
}

impl<'a> Walk<'a> {
    fn report(
        &mut self,
        offset: usize,
        len: usize,
        message: String,
        label: &str,
        hint: Option<String>,
    ) {
        self.out.findings.push(Finding {
            offset,
            len,
            message,
            label: label.to_owned(),
            hint,
        });
    }

    fn stmts(&mut self, stmts: &[ast::Stmt<'a>]) {
        for s in stmts {
            self.stmt(s);
        }
    }

    fn stmt(&mut self, stmt: &ast::Stmt<'a>) {
        match stmt {
            ast::Stmt::Template(t) => self.stmts(&t.children),
            ast::Stmt::EmitExpr(e) => {
                self.expr(&e.expr);
            }
            ast::Stmt::EmitRaw(_) | ast::Stmt::Continue(_) | ast::Stmt::Break(_) => {}
            ast::Stmt::ForLoop(f) => {
                let items = self.expr(&f.iter);
                self.scopes.push(HashMap::new());
                self.bind(&f.target, element_of(items));
                self.loops.push(f.recursive);
                if let Some(filter) = &f.filter_expr {
                    self.expr(filter);
                }
                self.stmts(&f.body);
                self.loops.pop();
                self.scopes.pop();
                self.stmts(&f.else_body);
            }
            ast::Stmt::IfCond(i) => {
                self.expr(&i.expr);
                self.stmts(&i.true_body);
                self.stmts(&i.false_body);
            }
            ast::Stmt::WithBlock(w) => {
                let kinds: Vec<Kind> = w.assignments.iter().map(|(_, e)| self.expr(e)).collect();
                self.scopes.push(HashMap::new());
                for ((target, _), kind) in w.assignments.iter().zip(kinds) {
                    self.bind(target, kind);
                }
                self.stmts(&w.body);
                self.scopes.pop();
            }
            ast::Stmt::Set(s) => {
                let kind = self.expr(&s.expr);
                self.bind(&s.target, kind);
            }
            ast::Stmt::SetBlock(s) => {
                self.stmts(&s.body);
                if let Some(filter) = &s.filter {
                    self.expr(filter);
                }
                self.bind(&s.target, Kind::Str);
            }
            ast::Stmt::AutoEscape(a) => {
                self.expr(&a.enabled);
                self.stmts(&a.body);
            }
            ast::Stmt::FilterBlock(f) => {
                self.expr(&f.filter);
                self.stmts(&f.body);
            }
            ast::Stmt::Block(b) => self.stmts(&b.body),
            ast::Stmt::Import(i) => {
                self.expr(&i.expr);
                self.bind(&i.name, Kind::Unknown);
            }
            ast::Stmt::FromImport(i) => {
                self.expr(&i.expr);
                for (name, alias) in &i.names {
                    self.bind(alias.as_ref().unwrap_or(name), Kind::Unknown);
                }
            }
            ast::Stmt::Extends(e) => {
                self.expr(&e.name);
            }
            ast::Stmt::Include(i) => {
                self.expr(&i.name);
            }
            ast::Stmt::Macro(m) => self.macro_body(m),
            ast::Stmt::CallBlock(c) => {
                self.call(&c.call);
                self.macro_body(&c.macro_decl);
            }
            ast::Stmt::Do(d) => {
                self.call(&d.call);
            }
        }
    }

    fn macro_body(&mut self, m: &ast::Macro<'a>) {
        for default in &m.defaults {
            self.expr(default);
        }
        self.scopes.push(HashMap::new());
        for arg in &m.args {
            self.bind(arg, Kind::Unknown);
        }
        self.bind_name("caller", Kind::Unknown);
        self.stmts(&m.body);
        self.scopes.pop();
    }

    fn bind(&mut self, target: &ast::Expr<'a>, kind: Kind) {
        match target {
            ast::Expr::Var(v) => self.bind_name(v.id, kind),
            ast::Expr::Tuple(t) => {
                for item in &t.items {
                    self.bind(item, element_of(kind));
                }
            }
            ast::Expr::List(l) => {
                for item in &l.items {
                    self.bind(item, element_of(kind));
                }
            }
            // `ns.attr = …` binds no name.
            _ => {}
        }
    }

    fn bind_name(&mut self, name: &'a str, kind: Kind) {
        if let Some(scope) = self.scopes.last_mut() {
            scope.insert(name, kind);
        }
    }

    fn local(&self, name: &str) -> Option<Kind> {
        self.scopes.iter().rev().find_map(|s| s.get(name).copied())
    }

    fn var(&self, name: &str) -> Kind {
        if let Some(kind) = self.local(name) {
            return kind;
        }
        if self.macros.contains(&name) {
            return Kind::Unknown;
        }
        match name {
            "params" => Kind::Params,
            "result" => Kind::Result,
            "steps" => Kind::Steps,
            "run" | "secrets" | "env" => Kind::Texts,
            "loop" if !self.loops.is_empty() => Kind::Loop,
            _ if Some(name) == self.item => Kind::Data,
            _ => Kind::Unknown,
        }
    }

    fn attr(&self, base: Kind, name: &str) -> Kind {
        match base {
            Kind::Params => self.runbook.param(name).map_or(Kind::Data, |p| match p.ty {
                ParamType::String => Kind::Str,
                ParamType::Int => Kind::Number,
                ParamType::Bool => Kind::Bool,
                ParamType::List => Kind::List,
                ParamType::Map => Kind::Map,
            }),
            Kind::Result => match name {
                "stdout" | "stderr" | "body" => Kind::Str,
                "exit_code" | "status" => Kind::Number,
                "headers" => Kind::Map,
                _ => Kind::Data,
            },
            Kind::Steps => Kind::Step,
            Kind::Step => match name {
                "status" => Kind::Str,
                "outputs" => Kind::Map,
                "items" => Kind::List,
                _ => Kind::Data,
            },
            Kind::Texts => Kind::Str,
            Kind::Loop => match name {
                "index" | "index0" | "revindex" | "revindex0" | "length" | "depth" | "depth0" => {
                    Kind::Number
                }
                "first" | "last" => Kind::Bool,
                _ => Kind::Data,
            },
            Kind::Unknown => Kind::Unknown,
            Kind::Str | Kind::List | Kind::Map | Kind::Number | Kind::Bool | Kind::Data => {
                Kind::Data
            }
        }
    }

    fn args(&mut self, args: &[ast::CallArg<'a>]) {
        for arg in args {
            match arg {
                ast::CallArg::Pos(e)
                | ast::CallArg::Kwarg(_, e)
                | ast::CallArg::PosSplat(e)
                | ast::CallArg::KwargSplat(e) => {
                    self.expr(e);
                }
            }
        }
    }

    #[expect(
        clippy::too_many_lines,
        reason = "one arm per kind of expression in minijinja's syntax tree: it reads best whole"
    )]
    fn expr(&mut self, expr: &ast::Expr<'a>) -> Kind {
        match expr {
            ast::Expr::Var(v) => self.var(v.id),
            ast::Expr::Const(c) => match c.value.kind() {
                ValueKind::String => Kind::Str,
                ValueKind::Number => Kind::Number,
                ValueKind::Bool => Kind::Bool,
                ValueKind::Seq => Kind::List,
                ValueKind::Map => Kind::Map,
                _ => Kind::Data,
            },
            ast::Expr::Slice(s) => {
                let base = self.expr(&s.expr);
                for part in [&s.start, &s.stop, &s.step].into_iter().flatten() {
                    self.expr(part);
                }
                match base {
                    Kind::Str => Kind::Str,
                    Kind::List => Kind::List,
                    k if k.is_data() => Kind::Data,
                    _ => Kind::Unknown,
                }
            }
            ast::Expr::UnaryOp(u) => {
                let kind = self.expr(&u.expr);
                match u.op {
                    ast::UnaryOpKind::Not => Kind::Bool,
                    ast::UnaryOpKind::Neg if kind.is_data() => Kind::Number,
                    ast::UnaryOpKind::Neg => Kind::Unknown,
                }
            }
            ast::Expr::BinOp(b) => {
                let left = self.expr(&b.left);
                let right = self.expr(&b.right);
                match b.op {
                    ast::BinOpKind::Concat => Kind::Str,
                    ast::BinOpKind::Eq
                    | ast::BinOpKind::Ne
                    | ast::BinOpKind::Lt
                    | ast::BinOpKind::Lte
                    | ast::BinOpKind::Gt
                    | ast::BinOpKind::Gte
                    | ast::BinOpKind::In => Kind::Bool,
                    _ => either(left, right),
                }
            }
            ast::Expr::Compare(c) => {
                self.expr(&c.expr);
                for op in &c.ops {
                    self.expr(&op.expr);
                }
                Kind::Bool
            }
            ast::Expr::IfExpr(i) => {
                self.expr(&i.test_expr);
                let yes = self.expr(&i.true_expr);
                match &i.false_expr {
                    Some(no) => {
                        let no = self.expr(no);
                        either(yes, no)
                    }
                    None => yes,
                }
            }
            ast::Expr::Filter(f) => self.filter(f),
            ast::Expr::Test(t) => {
                self.test(t);
                Kind::Bool
            }
            ast::Expr::GetAttr(g) => {
                let base = self.expr(&g.expr);
                self.attr(base, g.name)
            }
            ast::Expr::GetItem(g) => {
                let base = self.expr(&g.expr);
                self.expr(&g.subscript_expr);
                match (&g.subscript_expr, base) {
                    (_, Kind::Unknown) => Kind::Unknown,
                    (ast::Expr::Const(c), _) if c.value.as_str().is_some() => {
                        self.attr(base, c.value.as_str().unwrap_or_default())
                    }
                    _ => Kind::Data,
                }
            }
            ast::Expr::Call(c) => self.call(c),
            ast::Expr::List(l) => {
                for item in &l.items {
                    self.expr(item);
                }
                Kind::List
            }
            ast::Expr::Tuple(t) => {
                for item in &t.items {
                    self.expr(item);
                }
                Kind::List
            }
            ast::Expr::Map(m) => {
                for e in m.keys.iter().chain(&m.values) {
                    self.expr(e);
                }
                Kind::Map
            }
        }
    }

    fn filter(&mut self, f: &ast::Spanned<ast::Filter<'a>>) -> Kind {
        if let Some(value) = &f.expr {
            self.expr(value);
        }
        self.args(&f.args);
        let span = f.span();
        let at = span.start_offset as usize;
        let Some(sig) = callables::find(FILTERS, f.name) else {
            self.unknown_filter(f.name, at);
            return Kind::Unknown;
        };
        self.check_args(Callee::Filter, sig, &f.args, at, span.end_offset as usize);
        self.named_in_arguments(f.name, &f.args);
        sig.returns
    }

    fn unknown_filter(&mut self, name: &str, at: usize) {
        let hint = callables::find(TESTS, name)
            .map(|_| format!("`{name}` is a test: `… is {name}`"))
            .or_else(|| callables::instead_of_filter(name).map(str::to_owned))
            .or_else(|| did_you_mean(name, callables::names(FILTERS)))
            .or_else(|| {
                callables::find(FUNCTIONS, name)
                    .map(|_| format!("`{name}` is a function: `{name}(…)`"))
            })
            .or_else(|| {
                Some(
                    "the filters are minijinja's builtins and regex_search, regex_capture, \
                     quote, from_json, to_json, b64encode, b64decode, strftime"
                        .to_owned(),
                )
            });
        self.report(
            at,
            name.len(),
            format!("unknown filter `{name}`"),
            "not a filter",
            hint,
        );
    }

    fn test(&mut self, t: &ast::Spanned<ast::Test<'a>>) {
        self.expr(&t.expr);
        self.args(&t.args);
        let span = t.span();
        let at = span.start_offset as usize;
        match callables::find(TESTS, t.name) {
            Some(sig) => self.check_args(Callee::Test, sig, &t.args, at, span.end_offset as usize),
            None => self.unknown_test(t.name, at),
        }
    }

    fn unknown_test(&mut self, name: &str, at: usize) {
        let hint = callables::instead_of_test(name)
            .map(str::to_owned)
            .or_else(|| {
                callables::find(FILTERS, name)
                    .map(|_| format!("`{name}` is a filter: `… | {name}`"))
            })
            .or_else(|| {
                let words = callables::names(TESTS).filter(|n| n.chars().all(char::is_alphabetic));
                did_you_mean(name, words)
            })
            .or_else(|| {
                Some(
                    "tests include defined, none, string, number, sequence, mapping, \
                     startingwith, endingwith, eq, in"
                        .to_owned(),
                )
            });
        self.report(
            at,
            name.len(),
            format!("unknown test `{name}`"),
            "not a test",
            hint,
        );
    }

    /// The test that `select`/`reject` apply and the filter `map` applies, when written as a
    /// string literal.
    fn named_in_arguments(&mut self, filter: &str, args: &[ast::CallArg<'a>]) {
        let positional: Vec<&ast::Expr<'a>> = args
            .iter()
            .filter_map(|a| match a {
                ast::CallArg::Pos(e) => Some(e),
                _ => None,
            })
            .collect();
        let by_attribute = args
            .iter()
            .any(|a| matches!(a, ast::CallArg::Kwarg("attribute", _)));
        let (position, is_test) = match filter {
            "select" | "reject" => (0, true),
            "selectattr" | "rejectattr" => (1, true),
            "map" if !by_attribute => (0, false),
            _ => return,
        };
        let Some(ast::Expr::Const(c)) = positional.get(position) else {
            return;
        };
        let Some(name) = c.value.as_str() else {
            return;
        };
        // The literal's span includes its quote.
        let at = c.span().start_offset as usize + 1;
        if is_test && callables::find(TESTS, name).is_none() {
            self.unknown_test(name, at);
        } else if !is_test && callables::find(FILTERS, name).is_none() {
            self.unknown_filter(name, at);
        }
    }

    fn call(&mut self, c: &ast::Spanned<ast::Call<'a>>) -> Kind {
        let span = c.span();
        match c.identify_call() {
            ast::CallType::Function(name) => {
                self.args(&c.args);
                self.function(name, &c.args, span)
            }
            ast::CallType::Method(receiver, name) => {
                let kind = self.expr(receiver);
                self.args(&c.args);
                self.method(kind, receiver, name, &c.args, span)
            }
            ast::CallType::Block(_) => {
                self.args(&c.args);
                Kind::Unknown
            }
            ast::CallType::Object(callee) => {
                self.expr(callee);
                self.args(&c.args);
                Kind::Unknown
            }
        }
    }

    fn function(
        &mut self,
        name: &'a str,
        args: &[ast::CallArg<'a>],
        span: machinery::Span,
    ) -> Kind {
        let at = span.start_offset as usize;
        if self.local(name).is_some() || self.macros.contains(&name) || name == "caller" {
            return Kind::Str;
        }
        // `loop(…)` recurses in a `{% for … recursive %}`.
        if name == "loop" && self.loops.contains(&true) {
            return Kind::Unknown;
        }
        if let Some(sig) = callables::find(FUNCTIONS, name) {
            self.check_args(Callee::Function, sig, args, at, span.end_offset as usize);
            return sig.returns;
        }
        if self.var(name) != Kind::Unknown {
            // Calling data (`params()`) fails as "not callable"; the name itself is in scope.
            return Kind::Unknown;
        }
        let hint = callables::find(FILTERS, name)
            .map(|_| format!("`{name}` is a filter: `value | {name}`"))
            .or_else(|| {
                let mut known: Vec<&str> = self.macros.clone();
                for function in callables::names(FUNCTIONS) {
                    known.push(function);
                }
                did_you_mean(name, known)
            })
            .or_else(|| {
                Some(
                    "the functions are now(), range(…), dict(…), namespace(…) and debug(…)"
                        .to_owned(),
                )
            });
        self.report(
            at,
            name.len(),
            format!("unknown function `{name}`"),
            "not a function",
            hint,
        );
        self.out.unknown_functions.push(name.to_owned());
        Kind::Unknown
    }

    fn method(
        &mut self,
        kind: Kind,
        receiver: &ast::Expr<'a>,
        name: &str,
        args: &[ast::CallArg<'a>],
        span: machinery::Span,
    ) -> Kind {
        let receiver_end = receiver.span().end_offset as usize;
        let end = span.end_offset as usize;
        let at = self.text[receiver_end..end]
            .find(name)
            .map_or(receiver_end, |i| receiver_end + i);
        if kind == Kind::Loop {
            if let Some(sig) = callables::find(LOOP_METHODS, name) {
                self.check_args(Callee::LoopMethod, sig, args, at, end);
                return sig.returns;
            }
            self.report(
                at,
                name.len(),
                format!("`loop` has no method `{name}`"),
                "not a method of `loop`",
                Some(
                    "`loop` has the methods `cycle(…)` and `changed(…)` and attributes such as \
                     `index`, `first` and `last`"
                        .to_owned(),
                ),
            );
            return Kind::Unknown;
        }
        let written = self.receiver_text(receiver);
        let arg_texts: Vec<String> = args.iter().map(|a| self.arg_text(a)).collect();
        let arg_refs: Vec<&str> = arg_texts.iter().map(String::as_str).collect();
        let instead = callables::instead_of_method(name, &written, &arg_refs);
        if kind.is_data() {
            let message = match kind.plural() {
                Some(values) => format!("{values} have no method `{name}`"),
                None => format!("unknown method `{name}`"),
            };
            let hint = instead.or_else(|| {
                Some(
                    "values have no methods here: filters (`value | name`) and tests \
                     (`value is name`) do that work"
                        .to_owned(),
                )
            });
            self.report(at, name.len(), message, "values have no methods", hint);
        } else if let Some(hint) = instead {
            self.report(
                at,
                name.len(),
                format!("unknown method `{name}`"),
                "no value has this method",
                Some(hint),
            );
        }
        Kind::Unknown
    }

    /// The receiver as written, parenthesized unless it is a plain name, path or literal.
    fn receiver_text(&self, receiver: &ast::Expr<'a>) -> String {
        let text = self.source_of(receiver);
        let plain = text
            .chars()
            .all(|c| c.is_alphanumeric() || "_.[]'\"".contains(c));
        if plain {
            text.to_owned()
        } else {
            format!("({text})")
        }
    }

    fn arg_text(&self, arg: &ast::CallArg<'a>) -> String {
        match arg {
            ast::CallArg::Pos(e) => self.source_of(e).to_owned(),
            ast::CallArg::Kwarg(k, e) => format!("{k}={}", self.source_of(e)),
            ast::CallArg::PosSplat(e) => format!("*{}", self.source_of(e)),
            ast::CallArg::KwargSplat(e) => format!("**{}", self.source_of(e)),
        }
    }

    /// An expression's text: from its leftmost part (a postfix node's own span starts at its
    /// last step) to its end.
    fn source_of(&self, expr: &ast::Expr<'a>) -> &'a str {
        let start = (leftmost(expr) as usize).min(self.text.len());
        let end = (expr.span().end_offset as usize).clamp(start, self.text.len());
        self.text[start..end].trim()
    }

    fn check_args(
        &mut self,
        callee: Callee,
        sig: &Signature,
        args: &[ast::CallArg<'a>],
        at: usize,
        end: usize,
    ) {
        if args
            .iter()
            .any(|a| matches!(a, ast::CallArg::PosSplat(_) | ast::CallArg::KwargSplat(_)))
        {
            return;
        }
        let what = callee.noun();
        let positional = args
            .iter()
            .filter(|a| matches!(a, ast::CallArg::Pos(_)))
            .count();
        let keywords: Vec<(&str, &ast::Expr<'a>)> = args
            .iter()
            .filter_map(|a| match a {
                ast::CallArg::Kwarg(k, e) => Some((*k, e)),
                _ => None,
            })
            .collect();
        for (keyword, value) in &keywords {
            let accepted = match sig.keywords {
                Keywords::None => false,
                Keywords::Named(names) => names.contains(keyword),
                Keywords::Any => true,
            };
            if accepted {
                continue;
            }
            let value_at = leftmost(value) as usize;
            let keyword_at = self.text[at..value_at.max(at)]
                .rfind(keyword)
                .map_or(at, |i| at + i);
            let (message, hint) = match sig.keywords {
                Keywords::Named(names) => (
                    format!("{what} `{}` has no keyword argument `{keyword}`", sig.name),
                    did_you_mean(keyword, names.iter().copied())
                        .unwrap_or_else(|| format!("it takes `{}`", names.join("`, `"))),
                ),
                _ => (
                    format!("{what} `{}` takes no keyword arguments", sig.name),
                    format!("pass the value by position: `{}`", callee.usage(sig)),
                ),
            };
            self.report(
                keyword_at,
                keyword.len(),
                message,
                "not accepted here",
                Some(hint),
            );
        }
        let missing: Vec<&str> = sig
            .params
            .iter()
            .take(sig.required)
            .skip(positional)
            .filter(|p| !keywords.iter().any(|(k, _)| k == *p))
            .copied()
            .collect();
        let too_many = !sig.variadic && positional > sig.params.len();
        if missing.is_empty() && !too_many {
            return;
        }
        let label = if too_many {
            let extra = positional - sig.params.len();
            if extra == 1 {
                "one argument too many".to_owned()
            } else {
                format!("{extra} arguments too many")
            }
        } else {
            format!("`{}` missing", missing.join("`, `"))
        };
        let mut hint = format!("write `{}`", callee.usage(sig));
        if matches!(callee, Callee::Filter) {
            hint.push_str("; the value before `|` is not one of the arguments");
        }
        self.report(
            at,
            end.saturating_sub(at).max(sig.name.len()),
            format!("{what} `{}` {}, found {positional}", sig.name, arity(sig)),
            &label,
            Some(hint),
        );
    }
}

/// What iterating a value of this kind yields.
fn element_of(kind: Kind) -> Kind {
    match kind {
        Kind::Str | Kind::Map | Kind::Params | Kind::Steps | Kind::Texts => Kind::Str,
        Kind::Unknown | Kind::Loop => Kind::Unknown,
        _ => Kind::Data,
    }
}

/// The kind of a value that is one of two.
fn either(a: Kind, b: Kind) -> Kind {
    if a == b {
        a
    } else if a.is_data() && b.is_data() {
        Kind::Data
    } else {
        Kind::Unknown
    }
}

/// Where an expression's text starts.
fn leftmost(expr: &ast::Expr<'_>) -> u32 {
    match expr {
        ast::Expr::GetAttr(g) => leftmost(&g.expr),
        ast::Expr::GetItem(g) => leftmost(&g.expr),
        ast::Expr::Slice(s) => leftmost(&s.expr),
        ast::Expr::Call(c) => leftmost(&c.expr),
        ast::Expr::Filter(f) => f
            .expr
            .as_ref()
            .map_or(f.span().start_offset, |e| leftmost(e)),
        ast::Expr::Test(t) => leftmost(&t.expr),
        ast::Expr::BinOp(b) => leftmost(&b.left),
        ast::Expr::Compare(c) => leftmost(&c.expr),
        ast::Expr::IfExpr(i) => leftmost(&i.true_expr),
        other => other.span().start_offset,
    }
}

/// How many arguments a signature takes, in words.
fn arity(sig: &Signature) -> String {
    let count = |n: usize| {
        if n == 1 {
            "1 argument".to_owned()
        } else {
            format!("{n} arguments")
        }
    };
    let most = sig.params.len();
    if sig.variadic {
        format!("takes at least {}", count(sig.required))
    } else if most == 0 {
        "takes no arguments".to_owned()
    } else if sig.required == most {
        format!("takes {}", count(most))
    } else if sig.required == 0 {
        format!("takes at most {}", count(most))
    } else if most == sig.required + 1 {
        format!("takes {} or {most} arguments", sig.required)
    } else {
        format!("takes {} to {most} arguments", sig.required)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::plan::sites::{self, Field};

    fn runbook() -> Runbook {
        let yaml = "name: t\nparams:\n  name: { type: string, default: x }\n  ports: { type: list, default: [1] }\nsteps:\n  - id: a\n    run: 'true'\n";
        let file = crate::spec::SourceFile::new(Path::new("t.yaml"), yaml.to_owned());
        crate::spec::from_source(&file).expect("the runbook is valid")
    }

    /// The messages for one template (`expression`: a bare expression).
    fn messages(text: &str, expression: bool) -> Vec<String> {
        let rb = runbook();
        let site = sites::Site {
            text,
            span: crate::spec::Span::default(),
            expression,
            field: Field::Output,
            step: None,
        };
        check(&rb, &site)
            .findings
            .into_iter()
            .map(|f| {
                assert!(f.offset + f.len <= text.len(), "{f:?} is outside {text:?}");
                f.message
            })
            .collect()
    }

    #[test]
    fn methods_on_known_values_are_reported_with_their_kind() {
        assert_eq!(
            messages("{{ result.stdout.split(' ') }}", false),
            ["strings have no method `split`"]
        );
        assert_eq!(
            messages("params.name.endswith('.enc')", true),
            ["strings have no method `endswith`"]
        );
        assert_eq!(
            messages("{{ params.ports.append(2) }}", false),
            ["lists have no method `append`"]
        );
        assert_eq!(
            messages("{{ steps.a.outputs.items() }}", false),
            ["maps have no method `items`"]
        );
        assert_eq!(
            messages("{{ ('a' ~ 'b').upper() }}", false),
            ["strings have no method `upper`"]
        );
    }

    #[test]
    fn methods_on_values_of_unknown_kind_are_reported_only_when_no_value_has_them() {
        let template =
            "{% macro m(x) %}{{ x.split(',') }}{{ x.frobnicate() }}{% endmacro %}{{ m(1) }}";
        assert_eq!(messages(template, false), ["unknown method `split`"]);
        assert!(messages("{% set ns = namespace(f=1) %}{{ ns.whatever() }}", false).is_empty());
    }

    #[test]
    fn loop_has_cycle_and_changed() {
        assert!(
            messages(
                "{% for p in params.ports %}{{ loop.cycle('a', 'b') }}{{ loop.changed(p) }}{% endfor %}",
                false
            )
            .is_empty()
        );
        assert_eq!(
            messages(
                "{% for p in params.ports %}{{ loop.cycle() }}{% endfor %}",
                false
            ),
            ["method `cycle` takes at least 1 argument, found 0"]
        );
        assert_eq!(
            messages(
                "{% for p in params.ports %}{{ loop.next() }}{% endfor %}",
                false
            ),
            ["`loop` has no method `next`"]
        );
    }

    #[test]
    fn filters_tests_and_functions_are_looked_up_with_their_arguments() {
        assert_eq!(
            messages("{{ params.name | regex_serch('x') }}", false),
            ["unknown filter `regex_serch`"]
        );
        assert_eq!(
            messages("params.name is startswith('a')", true),
            ["unknown test `startswith`"]
        );
        assert_eq!(
            messages("{{ params.name | replace('a') }}", false),
            ["filter `replace` takes 2 arguments, found 1"]
        );
        assert_eq!(
            messages("{{ params.name | upper(1) }}", false),
            ["filter `upper` takes no arguments, found 1"]
        );
        assert_eq!(
            messages("{{ params.ports | sort(revers=true) }}", false),
            ["filter `sort` has no keyword argument `revers`"]
        );
        assert_eq!(
            messages("{{ lookup('env', 'HOME') }}", false),
            ["unknown function `lookup`"]
        );
        assert_eq!(
            messages(
                "{{ params.ports | select('startswith', 'a') | list }}",
                false
            ),
            ["unknown test `startswith`"]
        );
        assert_eq!(
            messages("{{ now(1) }}", false),
            ["function `now` takes no arguments, found 1"]
        );
    }

    #[test]
    fn correct_calls_pass() {
        for text in [
            "{{ params.name | replace('a', 'b') | upper | trim }}",
            "{{ params.ports | map('string') | join(',') }}",
            "{{ params.ports | selectattr('x', 'eq', 1) | list }}",
            "{{ params.ports | groupby(attribute='x') }}",
            "{{ params.ports | sort(reverse=true, attribute='x') }}",
            "{% for k, v in params | items %}{{ k | upper }}{% endfor %}",
            "{% macro m(x) %}{{ x }}{% endmacro %}{{ m(1) }}{% call m(2) %}{{ caller() }}{% endcall %}",
            "{{ range(3) | list }}{{ dict(a=1) }}{{ now() | strftime('%Y') }}",
            "{{ result.stdout | regex_capture('(x)', 1) }}",
            "{% filter upper %}x{% endfilter %}",
            "a=(1 2 3); echo ${#a[@]}",
        ] {
            assert!(
                messages(text, false).is_empty(),
                "{text}: {:?}",
                messages(text, false)
            );
        }
    }
}
