//! Whole-pipeline tests: one per row of spec §2 and per rule of §1, §3–§6.
//! Each builds a small repository in memory and checks the graph.

use super::*;

fn parse(files: &[(&str, &str)]) -> Graph {
    let source: MemorySource = files.iter().copied().collect();
    parse_tree(&source, &ParseOptions::default())
}

fn registries(graph: &Graph) -> Vec<(String, String, String, u32)> {
    graph
        .registries
        .iter()
        .map(|r| (r.id.clone(), r.label.clone(), r.file.clone(), r.line))
        .collect()
}

/// `(registry, name)` pairs.
fn names(graph: &Graph) -> Vec<(String, String)> {
    graph
        .entries
        .iter()
        .map(|e| (e.registry.clone(), e.name.clone()))
        .collect()
}

fn entry<'g>(graph: &'g Graph, name: &str) -> &'g Entry {
    match graph.entries.iter().find(|e| e.name == name) {
        Some(e) => e,
        None => panic!("no entry {name} in {:#?}", graph.entries),
    }
}

/// `(registry, from, to, kind, dangling)` tuples.
fn edges(graph: &Graph) -> Vec<(String, String, String, EdgeKind, bool)> {
    graph
        .edges
        .iter()
        .map(|e| {
            (
                e.registry.clone(),
                e.from.clone(),
                e.to.clone(),
                e.kind,
                e.dangling,
            )
        })
        .collect()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

fn no_warnings(graph: &Graph) {
    let serious: Vec<_> = graph
        .diagnostics
        .iter()
        .filter(|d| d.severity != Severity::Info)
        .collect();
    assert!(serious.is_empty(), "unexpected diagnostics: {serious:#?}");
}

const REGS: &str = "from spice import Registry\n\npipelines = Registry(\"pipelines\")\n";

// ---------------------------------------------------------------- §1

#[test]
fn s1_registry_declaration_identity_label_file_line() {
    let g = parse(&[
        ("shop/__init__.py", ""),
        ("shop/registries.py", REGS),
        (
            "shop/models.py",
            "from spice import Registry\nBASE = Registry('base')\nMODELS = Registry(\n    \"model\",\n    parent=BASE,\n)\n",
        ),
    ]);
    assert_eq!(
        registries(&g),
        vec![
            (
                "shop.models.BASE".into(),
                "base".into(),
                "shop/models.py".into(),
                2
            ),
            (
                "shop.models.MODELS".into(),
                "model".into(),
                "shop/models.py".into(),
                3
            ),
            (
                "shop.registries.pipelines".into(),
                "pipelines".into(),
                "shop/registries.py".into(),
                3
            ),
        ]
    );
    no_warnings(&g);
}

#[test]
fn s1_label_defaults_to_the_variable_name() {
    let g = parse(&[(
        "m.py",
        "from spice import Registry\nA = Registry()\nB = Registry(parent=A)\nC = Registry(name='named')\nD: Registry = Registry(locations=['x'])\n",
    )]);
    let labels: Vec<_> = g.registries.iter().map(|r| r.label.as_str()).collect();
    assert_eq!(labels, vec!["A", "B", "named", "D"]);
}

#[test]
fn s1_registry_however_imported() {
    let g = parse(&[(
        "m.py",
        "import mmengine.registry as mr\nimport mmengine\nfrom spice import Registry as R\nfrom spice import Other\n\
         A = mr.Registry('a')\nB = mmengine.registry.Registry('b')\nC = R('c')\nAlias = R\nD = Alias('d')\nE = Other('e')\nF = Registry('f')\n",
    )]);
    let ids: Vec<_> = g.registries.iter().map(|r| r.id.as_str()).collect();
    // `F` uses a name that is not imported at all: still the constructor name.
    assert_eq!(ids, vec!["m.A", "m.B", "m.C", "m.D", "m.F"]);
}

#[test]
fn s1_catalogue_create_joins_string_arguments() {
    let g = parse(&[
        ("a.py", "import catalogue\nloaders = catalogue.create(\"pkg\", \"loaders\")\n"),
        ("b.py", "import catalogue as cat\narchs = cat.create('spacy', 'architectures', entry_points=True)\n"),
        ("c.py", "from catalogue import create\nplain = create()\n"),
        ("d.py", "import other\nnot_reg = other.create('x')\n"),
    ]);
    assert_eq!(
        registries(&g),
        vec![
            ("a.loaders".into(), "pkg.loaders".into(), "a.py".into(), 2),
            (
                "b.archs".into(),
                "spacy.architectures".into(),
                "b.py".into(),
                2
            ),
            ("c.plain".into(), "plain".into(), "c.py".into(), 2),
        ]
    );
}

#[test]
fn s1_class_level_registries() {
    let g = parse(&[
        (
            "zoo/base.py",
            "from spice import Registry\n\nclass Zoo:\n    BACKBONES = Registry('backbone')\n    class Heads:\n        HEADS = Registry('head')\n\n    @BACKBONES.register_module()\n    class Tiny:\n        pass\n",
        ),
        (
            "zoo/nets.py",
            "from zoo.base import Zoo\nfrom .base import Zoo as Z\n\nclass MyZoo(Zoo):\n    pass\n\n@Zoo.BACKBONES.register_module()\nclass ResNet: pass\n\n@Z.Heads.HEADS.register_module(name='fpn')\nclass FPN: pass\n\n@MyZoo.BACKBONES.register_module()\nclass Inherited: pass\n",
        ),
        ("zoo/local.py", "def f():\n    class Local:\n        R = Registry('r')\n"),
    ]);
    let ids: Vec<_> = g.registries.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        vec!["zoo.base.Zoo.BACKBONES", "zoo.base.Zoo.Heads.HEADS"]
    );
    assert_eq!(
        names(&g),
        pairs(&[
            ("zoo.base.Zoo.BACKBONES", "Inherited"),
            ("zoo.base.Zoo.BACKBONES", "ResNet"),
            ("zoo.base.Zoo.BACKBONES", "Tiny"),
            ("zoo.base.Zoo.Heads.HEADS", "fpn"),
        ])
    );
    assert_eq!(entry(&g, "Tiny").target, "zoo.base.Zoo.Tiny");
}

// ---------------------------------------------------------------- §2

#[test]
fn s2_register_attribute_on_def_async_def_and_class() {
    let g = parse(&[(
        "m.py",
        "from spice import Registry\nR = Registry('r')\n\n@R.register\ndef f():\n    \"\"\"Eff.\"\"\"\n\n@R.register\nasync def g(): pass\n\n@R.register\nclass K:\n    '''Kay.\n\n    More.'''\n",
    )]);
    let got: Vec<_> = g
        .entries
        .iter()
        .map(|e| {
            (
                e.name.as_str(),
                e.kind,
                e.target.as_str(),
                e.line,
                e.doc.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("K", EntryKind::Class, "m.K", 12, Some("Kay.")),
            ("f", EntryKind::Function, "m.f", 5, Some("Eff.")),
            ("g", EntryKind::Function, "m.g", 9, None),
        ]
    );
    no_warnings(&g);
}

#[test]
fn s2_register_with_a_name() {
    let g = parse(&[(
        "m.py",
        "from spice import Registry\nR = Registry('r')\n@R.register(\"x\")\ndef f(): pass\n@R.register(name=\"y\")\ndef g(): pass\n@R.register()\ndef h(): pass\n",
    )]);
    assert_eq!(
        names(&g),
        pairs(&[("m.R", "h"), ("m.R", "x"), ("m.R", "y")])
    );
    assert_eq!(entry(&g, "x").target, "m.f");
}

#[test]
fn s2_register_module() {
    let g = parse(&[(
        "m.py",
        "from mmengine.registry import Registry\nMODELS = Registry('model')\n@MODELS.register_module()\nclass ResNet: pass\n@MODELS.register_module(name='vit')\nclass ViT: pass\n@MODELS.register_module(force=True)\nclass Forced: pass\n",
    )]);
    assert_eq!(
        names(&g),
        pairs(&[
            ("m.MODELS", "Forced"),
            ("m.MODELS", "ResNet"),
            ("m.MODELS", "vit")
        ])
    );
}

#[test]
fn s2_registry_called_as_decorator() {
    let g = parse(&[(
        "m.py",
        "import catalogue\nloaders = catalogue.create('pkg', 'loaders')\n@loaders('csv.v1')\ndef load_csv(path): pass\n",
    )]);
    assert_eq!(names(&g), pairs(&[("m.loaders", "csv.v1")]));
    assert_eq!(entry(&g, "csv.v1").kind, EntryKind::Function);
}

#[test]
fn s2_register_call_statements() {
    let g = parse(&[
        (
            "pkg/regs.py",
            "from spice import Registry\nR = Registry('r')\n",
        ),
        (
            "pkg/impl.py",
            "def load():\n    \"\"\"Loads.\"\"\"\n",
        ),
        (
            "pkg/wire.py",
            "from pkg.regs import R\nfrom pkg import impl\nfrom pkg.impl import load as loader\n\nR.register(\"x\", impl.load)\nR.register(\n    loader,\n)\n",
        ),
    ]);
    let got: Vec<_> = g
        .entries
        .iter()
        .map(|e| {
            (
                e.name.as_str(),
                e.kind,
                e.target.as_str(),
                e.line,
                e.doc.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "load",
                EntryKind::Object,
                "pkg.impl.load",
                6,
                Some("Loads.")
            ),
            ("x", EntryKind::Object, "pkg.impl.load", 5, Some("Loads.")),
        ]
    );
}

#[test]
fn s2_register_module_call_statements() {
    let g = parse(&[(
        "m.py",
        "from mmengine import Registry\nfrom torchvision.models import resnet50\nMODELS = Registry('model')\nclass Net: pass\nMODELS.register_module(module=Net)\nMODELS.register_module(name='r50', module=resnet50)\n",
    )]);
    let got: Vec<_> = g
        .entries
        .iter()
        .map(|e| (e.name.as_str(), e.target.as_str(), e.line))
        .collect();
    assert_eq!(
        got,
        vec![
            ("Net", "m.Net", 5),
            ("r50", "torchvision.models.resnet50", 6)
        ]
    );
}

/// `(name, target, line)` of an entry.
type EntrySummary<'g> = (&'g str, &'g str, u32);

/// `(name, target, line)` of every entry, and `(line, message)` of every warning.
fn entries_and_warnings(g: &Graph) -> (Vec<EntrySummary<'_>>, Vec<(u32, &str)>) {
    let entries = g
        .entries
        .iter()
        .map(|e| (e.name.as_str(), e.target.as_str(), e.line))
        .collect();
    let warnings = g
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Warning)
        .map(|d| (d.line, d.message.as_str()))
        .collect();
    (entries, warnings)
}

#[test]
fn s2_registered_object_as_func_module_or_obj_keyword() {
    let g = parse(&[
        (
            "pkg/regs.py",
            "import catalogue\nfrom spice import Registry\nR = Registry('r')\nloaders = catalogue.create('pkg', 'loaders')\n",
        ),
        (
            "pkg/impl.py",
            "def load():\n    \"\"\"Loads.\"\"\"\nclass Net: pass\ndef other(): pass\n",
        ),
        (
            "pkg/wire.py",
            "from pkg.regs import R, loaders\nfrom pkg.impl import load, Net, other\nloaders.register('csv', func=load)\nR.register_module('net', module=Net)\nR.register('o', obj=other)\nR.register(name='kw', func=load)\n",
        ),
    ]);
    let (entries, warnings) = entries_and_warnings(&g);
    assert_eq!(
        entries,
        vec![
            ("kw", "pkg.impl.load", 6),
            ("net", "pkg.impl.Net", 4),
            ("o", "pkg.impl.other", 5),
            ("csv", "pkg.impl.load", 3),
        ]
    );
    assert_eq!(warnings, vec![]);
    assert_eq!(entry(&g, "csv").doc.as_deref(), Some("Loads."));
    assert_eq!(entry(&g, "csv").kind, EntryKind::Object);
}

/// spaCy's `registry.factories.register(internal_name, func=factory_func)`
/// inside a helper: the name is only known at run time.
#[test]
fn s2_dynamic_name_is_replaced_by_the_object_name_with_a_warning() {
    let g = parse(&[
        (
            "pkg/regs.py",
            "import catalogue\nfactories = catalogue.create('pkg', 'factories')\nlanguages = catalogue.create('pkg', 'languages')\n",
        ),
        (
            "pkg/language.py",
            "from pkg import regs\n\ndef build(): pass\n\ndef factory(name):\n    def add_factory(factory_func):\n        internal_name = 'x' + name\n        regs.factories.register(internal_name, func=factory_func)\n        return factory_func\n    return add_factory\n\ndef register_language(name, cls):\n    regs.languages.register(name, func=cls)\n\nregs.factories.register(NAMES[0], build)\n",
        ),
    ]);
    let (entries, warnings) = entries_and_warnings(&g);
    assert_eq!(
        entries,
        vec![
            ("build", "pkg.language.build", 15),
            ("factory_func", "factory_func", 8),
            ("cls", "cls", 13),
        ]
    );
    assert_eq!(
        warnings,
        vec![
            (
                8,
                "entry name `internal_name` is dynamic (not a string literal); `factory_func` is used instead"
            ),
            (
                13,
                "entry name `name` is dynamic (not a string literal); `cls` is used instead"
            ),
            (
                15,
                "entry name `NAMES[0]` is dynamic (not a string literal); `build` is used instead"
            ),
        ]
    );
}

#[test]
fn s2_a_lone_non_literal_argument_is_the_object_and_an_unnamed_object_is_skipped() {
    let g = parse(&[(
        "m.py",
        "from spice import Registry\nR = Registry('r')\ndef f(): pass\nR.register(f)\nR.register(key, lambda: 1)\nR.register(name=key)\nR.register(f'{k}', func=f)\n",
    )]);
    let (entries, warnings) = entries_and_warnings(&g);
    // `R.register(f)` is the object alone, named after it without a warning;
    // `R.register(name=key)` names no object and registers nothing; an
    // f-string name is as dynamic as a variable.
    assert_eq!(entries, vec![("f", "m.f", 4), ("f", "m.f", 7)]);
    assert_eq!(
        warnings,
        vec![
            (
                5,
                "entry name `key` is dynamic (not a string literal); registration skipped"
            ),
            (
                7,
                "entry name `f'{k}'` is dynamic (not a string literal); `f` is used instead"
            ),
        ]
    );
}

#[test]
fn s2_register_module_with_a_list_of_names() {
    let g = parse(&[(
        "m.py",
        "from spice import Registry\nR = Registry('r')\n@R.register_module(name=[\"x\", \"y\"])\nclass Both: pass\n",
    )]);
    assert_eq!(names(&g), pairs(&[("m.R", "x"), ("m.R", "y")]));
    assert!(g
        .entries
        .iter()
        .all(|e| e.target == "m.Both" && e.line == 4));
}

#[test]
fn s2_registrations_count_anywhere_in_a_module() {
    let g = parse(&[(
        "m.py",
        "from spice import Registry\nR = Registry('r')\n\
         class Holder:\n    @R.register\n    def method(self): pass\n\
         def outer():\n    @R.register\n    def inner(): pass\n    R.register('late', inner)\n\
         if True:\n    @R.register\n    def in_if(): pass\n\
         try:\n    @R.register\n    def in_try(): pass\nexcept ImportError:\n    @R.register\n    def in_except(): pass\n",
    )]);
    let got: Vec<_> = g
        .entries
        .iter()
        .map(|e| (e.name.as_str(), e.target.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("in_except", "m.in_except"),
            ("in_if", "m.in_if"),
            ("in_try", "m.in_try"),
            ("inner", "m.outer.<locals>.inner"),
            ("late", "m.outer.<locals>.inner"),
            ("method", "m.Holder.method"),
        ]
    );
}

#[test]
fn s2_register_on_something_that_is_not_a_registry_is_ignored() {
    let g = parse(&[(
        "shop/admin.py",
        "from django.contrib import admin\nfrom .models import Author\n@admin.register(Author)\nclass AuthorAdmin(admin.ModelAdmin): pass\nregistry = {}\nregistry.register('x', Author)\n",
    )]);
    assert!(g.entries.is_empty());
    assert!(g.registries.is_empty());
    no_warnings(&g);
}

#[test]
fn s2_non_literal_name_falls_back_with_a_warning() {
    let g = parse(&[(
        "m.py",
        "from spice import Registry\nR = Registry('r')\nNAME = 'x'\n@R.register(NAME)\ndef f(): pass\n",
    )]);
    assert_eq!(names(&g), pairs(&[("m.R", "f")]));
    assert!(g
        .diagnostics
        .iter()
        .any(|d| d.line == 5 && d.message.contains("not a string literal")));
}

// ------------------------------------------------------- import resolution

#[test]
fn resolution_through_import_as_and_from_import() {
    let g = parse(&[
        ("shop/__init__.py", ""),
        ("shop/registries.py", REGS),
        (
            "shop/a.py",
            "import shop.registries as regs\n@regs.pipelines.register\ndef a(): pass\n",
        ),
        (
            "shop/b.py",
            "import shop.registries\n@shop.registries.pipelines.register\ndef b(): pass\n",
        ),
        (
            "shop/c.py",
            "from shop.registries import pipelines as p\n@p.register\ndef c(): pass\n",
        ),
        (
            "shop/d.py",
            "from shop import registries\nP = registries.pipelines\n@P.register\ndef d(): pass\n",
        ),
    ]);
    let all: Vec<_> = g.entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(all, vec!["a", "b", "c", "d"]);
    no_warnings(&g);
}

#[test]
fn resolution_through_relative_imports_and_src_layout() {
    let g = parse(&[
        ("src/shop/__init__.py", ""),
        ("src/shop/registries.py", REGS),
        ("src/shop/orders/__init__.py", "from .. import registries\n"),
        (
            "src/shop/orders/jobs.py",
            "from ..registries import pipelines\nfrom . import helpers\n@pipelines.register\ndef job(): pass\n@helpers.P.register\ndef job2(): pass\n",
        ),
        ("src/shop/orders/helpers.py", "from ..registries import pipelines as P\n"),
        ("src/shop/orders/bad.py", "from ...shop.registries import pipelines\n@pipelines.register\ndef nope(): pass\n"),
    ]);
    assert_eq!(g.registries[0].id, "shop.registries.pipelines");
    assert_eq!(
        names(&g),
        pairs(&[
            ("shop.registries.pipelines", "job"),
            ("shop.registries.pipelines", "job2")
        ])
    );
    assert_eq!(entry(&g, "job").target, "shop.orders.jobs.job");
    assert_eq!(entry(&g, "job").file, "src/shop/orders/jobs.py");
    // `...shop` from shop/orders/bad.py climbs above the top-level package.
    let bad: Vec<_> = g
        .diagnostics
        .iter()
        .map(|d| {
            (
                d.file.as_str(),
                d.line,
                d.message.contains("above the top-level"),
            )
        })
        .collect();
    assert_eq!(bad, vec![("src/shop/orders/bad.py", 1, true)]);
}

#[test]
fn resolution_through_init_reexports() {
    let g = parse(&[
        ("shop/__init__.py", "from .registries import pipelines\nfrom .more import *\n"),
        ("shop/registries.py", REGS),
        ("shop/more.py", "from spice import Registry\n__all__ = ['loaders']\nloaders = Registry('loaders')\n"),
        (
            "app/jobs.py",
            "from shop import pipelines, loaders\nimport shop\n@pipelines.register\ndef a(): pass\n@shop.pipelines.register\ndef b(): pass\n@loaders.register\ndef c(): pass\n@shop.loaders.register\ndef d(): pass\n",
        ),
    ]);
    assert_eq!(
        names(&g),
        pairs(&[
            ("shop.more.loaders", "c"),
            ("shop.more.loaders", "d"),
            ("shop.registries.pipelines", "a"),
            ("shop.registries.pipelines", "b"),
        ])
    );
}

#[test]
fn resolution_prefers_the_local_fallback_import() {
    let g = parse(&[
        ("pkg/__init__.py", ""),
        ("pkg/registry.py", "class Registry: pass\nR = Registry('r')\n"),
        (
            "pkg/use.py",
            "try:\n    from external.lib import R\nexcept ImportError:\n    from pkg.registry import R\n@R.register\ndef f(): pass\n",
        ),
    ]);
    assert_eq!(names(&g), pairs(&[("pkg.registry.R", "f")]));
}

#[test]
fn import_cycles_terminate() {
    let g = parse(&[
        ("a.py", "from b import X\nfrom b import *\n@X.register\ndef f(): pass\n@Y.register\ndef g(): pass\n"),
        ("b.py", "from a import X\nfrom a import *\nY = X\n"),
    ]);
    assert!(g.entries.is_empty());
}

// ---------------------------------------------------------------- §3

#[test]
fn s3_1_explicit_dependencies_in_every_form() {
    let g = parse(&[
        (
            "flow/regs.py",
            "from spice import Registry\nimport catalogue\nsteps = Registry('steps')\nloaders = catalogue.create('flow', 'loaders')\n",
        ),
        (
            "flow/steps.py",
            "from flow.regs import steps, loaders\n\n@loaders.register('csv')\ndef read_csv(): pass\n\n@steps.register\ndef fetch_raw(): pass\n\n@steps.register\ndef clean(): pass\n\n@steps.register(depends_on='fetch_raw')\ndef a(): pass\n\n@steps.register(requires=['fetch_raw', 'clean'])\ndef b(): pass\n\n@steps.register(inputs=(fetch_raw, clean))\ndef c(): pass\n\n@steps.register(deps=['flow.loaders:csv', 'flow.regs.loaders:csv', read_csv])\ndef d(): pass\n\nsteps.register('e', fetch_raw, depends_on=[clean])\n",
        ),
    ]);
    let got = edges(&g);
    let want: Vec<(String, String, String, EdgeKind, bool)> = [
        ("fetch_raw", "a"),
        ("clean", "b"),
        ("fetch_raw", "b"),
        ("clean", "c"),
        ("fetch_raw", "c"),
        ("flow.regs.loaders:csv", "d"),
        ("clean", "e"),
    ]
    .iter()
    .map(|(f, t)| {
        (
            "flow.regs.steps".to_owned(),
            (*f).to_owned(),
            (*t).to_owned(),
            EdgeKind::Explicit,
            false,
        )
    })
    .collect();
    let mut want = want;
    want.sort();
    assert_eq!(got, want);
    no_warnings(&g);
}

#[test]
fn s3_2_parameter_names_within_one_registry() {
    let g = parse(&[(
        "dag.py",
        "from spice import Registry\nnodes = Registry('nodes')\nother = Registry('other')\n\n@nodes.register\ndef raw(): pass\n\n@nodes.register\ndef cleaned(raw, unrelated, *raw_args, **kw): pass\n\n@nodes.register\ndef report(cleaned, /, raw, *, features=None): pass\n\n@other.register\ndef features(): pass\n\n@nodes.register\ndef raw2(raw2): pass\n",
    )]);
    assert_eq!(
        edges(&g),
        vec![
            (
                "dag.nodes".into(),
                "cleaned".into(),
                "report".into(),
                EdgeKind::Parameter,
                false
            ),
            (
                "dag.nodes".into(),
                "raw".into(),
                "cleaned".into(),
                EdgeKind::Parameter,
                false
            ),
            (
                "dag.nodes".into(),
                "raw".into(),
                "report".into(),
                EdgeKind::Parameter,
                false
            ),
        ]
    );
}

#[test]
fn s3_3_dangling_edges_are_kept_and_diagnosed() {
    let g = parse(&[(
        "m.py",
        "from spice import Registry\nR = Registry('r')\n@R.register(depends_on=['ghost', 'nowhere:x', missing_func])\ndef f(): pass\n",
    )]);
    assert_eq!(
        edges(&g),
        vec![
            (
                "m.R".into(),
                "ghost".into(),
                "f".into(),
                EdgeKind::Explicit,
                true
            ),
            (
                "m.R".into(),
                "missing_func".into(),
                "f".into(),
                EdgeKind::Explicit,
                true
            ),
            (
                "m.R".into(),
                "nowhere:x".into(),
                "f".into(),
                EdgeKind::Explicit,
                true
            ),
        ]
    );
    let dangling: Vec<_> = g
        .diagnostics
        .iter()
        .filter(|d| d.message.starts_with("dangling edge"))
        .map(|d| (d.file.as_str(), d.line))
        .collect();
    assert_eq!(dangling, vec![("m.py", 4); 3]);
}

// ---------------------------------------------------------------- §4

#[test]
fn s4_registry_constructors_from_spice_toml() {
    let g = parse(&[
        ("spice.toml", "registry_constructors = [\"make_registry\", \"plugins.api.create\"]\n"),
        (
            "m.py",
            "from mylib import make_registry\nimport plugins.api\nA = make_registry('a')\nB = plugins.api.create('b')\nC = plugins.create('c')\n",
        ),
    ]);
    let ids: Vec<_> = g.registries.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, vec!["m.A", "m.B"]);
}

#[test]
fn s4_decorator_registries_from_pyproject() {
    let g = parse(&[
        (
            "pyproject.toml",
            "[project]\nname = \"x\"\n\n[tool.spice]\ndecorator_registries = { asset = \"assets\", fixture = \"fixtures\" }\n",
        ),
        (
            "pipeline/assets.py",
            "from dagster import asset\nimport dagster as dg\nfrom dagster import asset as dg_asset\n\n@asset\ndef raw(): pass\n\n@asset(name='cleaned_v2')\ndef cleaned(raw): pass\n\n@dg.asset\ndef report(cleaned_v2): pass\n\n@dg.asset('summary')\ndef summarise(report): pass\n\n@dg_asset\nclass Model: pass\n\n@unrelated\ndef nope(): pass\n",
        ),
        (
            "tests/conftest.py",
            "import pytest\n\n@pytest.fixture\ndef app(): pass\n\n@pytest.fixture\ndef db(app): pass\n\n@pytest.fixture(name='client')\ndef make_client(app, db): pass\n",
        ),
    ]);
    assert_eq!(
        registries(&g),
        vec![
            ("assets".into(), "assets".into(), "pyproject.toml".into(), 5),
            (
                "fixtures".into(),
                "fixtures".into(),
                "pyproject.toml".into(),
                5
            ),
        ]
    );
    assert_eq!(
        names(&g),
        pairs(&[
            ("assets", "Model"),
            ("assets", "cleaned_v2"),
            ("assets", "raw"),
            ("assets", "report"),
            ("assets", "summary"),
            ("fixtures", "app"),
            ("fixtures", "client"),
            ("fixtures", "db"),
        ])
    );
    assert_eq!(entry(&g, "client").target, "tests.conftest.make_client");
    let param_edges: Vec<_> = g
        .edges
        .iter()
        .map(|e| (e.registry.as_str(), e.from.as_str(), e.to.as_str()))
        .collect();
    assert_eq!(
        param_edges,
        vec![
            ("assets", "cleaned_v2", "report"),
            ("assets", "raw", "cleaned_v2"),
            ("assets", "report", "summary"),
            ("fixtures", "app", "client"),
            ("fixtures", "app", "db"),
            ("fixtures", "db", "client"),
        ]
    );
}

#[test]
fn s4_include_and_exclude() {
    let g = parse(&[
        (
            "spice.toml",
            "include = [\"src/**\", \"tools/*.py\"]\nexclude = [\"src/shop/legacy\", \"**/test_*.py\"]\n",
        ),
        ("src/shop/regs.py", REGS),
        ("src/shop/legacy/regs.py", REGS),
        ("src/shop/test_regs.py", REGS),
        ("tools/regs.py", REGS),
        ("tools/deep/regs.py", REGS),
        ("scripts/regs.py", REGS),
    ]);
    let files: Vec<_> = g.registries.iter().map(|r| r.file.as_str()).collect();
    assert_eq!(files, vec!["src/shop/regs.py", "tools/regs.py"]);
}

#[test]
fn s4_bad_config_gives_a_diagnostic_and_defaults() {
    let g = parse(&[
        ("spice.toml", "registry_constructors = [\"make\"\n"),
        ("m.py", "A = make('a')\nB = Registry('b')\n"),
    ]);
    let ids: Vec<_> = g.registries.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, vec!["m.B"]);
    assert!(g
        .diagnostics
        .iter()
        .any(|d| d.file == "spice.toml" && d.severity == Severity::Warning));
}

// ---------------------------------------------------------------- §5

#[test]
fn s5_syntax_errors_keep_what_can_be_recovered() {
    let g = parse(&[
        ("regs.py", "from spice import Registry\nR = Registry('r')\n"),
        (
            "broken.py",
            "from regs import R\n\n@R.register\ndef before(): pass\n\ndef oops(:\n    pass\n\n@R.register\ndef after(): pass\n",
        ),
        ("fine.py", "from regs import R\n@R.register\ndef fine(): pass\n"),
    ]);
    assert_eq!(
        names(&g),
        pairs(&[
            ("regs.R", "after"),
            ("regs.R", "before"),
            ("regs.R", "fine")
        ])
    );
    let errors: Vec<_> = g
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| (d.file.as_str(), d.line))
        .collect();
    assert!(!errors.is_empty());
    assert!(
        errors.iter().all(|&(f, l)| f == "broken.py" && l == 6),
        "{errors:?}"
    );
}

#[test]
fn s5_non_utf8_binary_and_oversize_files_are_skipped() {
    let mut source = MemorySource::new()
        .with("ok.py", "from spice import Registry\nR = Registry('r')\n")
        .with("latin1.py", b"# caf\xe9\nR2 = Registry('x')\n".to_vec())
        .with("blob.py", b"R3 = Registry('y')\n\0\x01\x02".to_vec());
    source.insert("big.py", format!("R4 = Registry('z')\n{}", "#".repeat(200)));
    let options = ParseOptions {
        max_file_size: 100,
        ..ParseOptions::default()
    };
    let g = parse_tree(&source, &options);
    assert_eq!(g.registries.len(), 1);
    let diags: Vec<_> = g
        .diagnostics
        .iter()
        .map(|d| {
            (
                d.file.as_str(),
                d.line,
                d.severity,
                d.message.split(':').next().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        diags,
        vec![
            ("big.py", 0, Severity::Warning, "skipped"),
            ("blob.py", 2, Severity::Warning, "skipped"),
            ("latin1.py", 1, Severity::Warning, "skipped"),
        ]
    );
    assert!(g.diagnostics[0].message.contains("limit"));
    assert!(g.diagnostics[1].message.contains("binary"));
    assert!(g.diagnostics[2].message.contains("UTF-8"));
}

#[test]
fn s5_vendored_trees_are_skipped_with_one_diagnostic_each() {
    let g = parse(&[
        ("app.py", REGS),
        (".venv/lib/python3.12/site-packages/spice/regs.py", REGS),
        ("env/lib/python3.12/site-packages/x/regs.py", REGS),
        ("env/lib/python3.12/site-packages/x/other.py", REGS),
        ("web/node_modules/pkg/regs.py", REGS),
        (".git/hooks/x.py", REGS),
    ]);
    assert_eq!(g.registries.len(), 1);
    let diags: Vec<_> = g
        .diagnostics
        .iter()
        .map(|d| (d.file.as_str(), d.severity))
        .collect();
    assert_eq!(
        diags,
        vec![
            (".venv", Severity::Info),
            ("env/lib/python3.12/site-packages", Severity::Info),
            ("web/node_modules", Severity::Info),
        ]
    );
}

#[test]
fn s5_vendored_trees_on_disk() -> std::io::Result<()> {
    let dir = tempfile::tempdir()?;
    std::fs::create_dir_all(dir.path().join("pkg"))?;
    std::fs::create_dir_all(dir.path().join(".venv/lib"))?;
    std::fs::write(dir.path().join("pkg/regs.py"), REGS)?;
    std::fs::write(dir.path().join(".venv/lib/regs.py"), REGS)?;
    let g = match parse_dir(dir.path()) {
        Ok(g) => g,
        Err(err) => panic!("{err}"),
    };
    assert_eq!(g.registries.len(), 1);
    assert_eq!(g.diagnostics.len(), 1);
    assert_eq!(g.diagnostics[0].file, ".venv");
    Ok(())
}

#[test]
fn s5_unreadable_root_is_the_only_error() {
    let missing = parse_dir(Path::new("/nonexistent/spicehub-test"));
    assert!(matches!(missing, Err(ParseError::UnreadableRoot { .. })));
    let file = tempfile::NamedTempFile::new();
    assert!(file.is_ok());
    if let Ok(file) = file {
        assert!(matches!(
            parse_dir(file.path()),
            Err(ParseError::NotADirectory { .. })
        ));
    }
}

/// Runs a parse of `source` on a thread with the default 2 MiB stack, like a
/// rayon worker: a stack overflow would abort the test process.
fn parse_on_small_stack(files: Vec<(String, String)>, max_file_size: u64) -> Graph {
    let handle = std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(move || {
            let source: MemorySource = files.into_iter().collect();
            let options = ParseOptions {
                max_file_size,
                ..ParseOptions::default()
            };
            // A pool of one worker with the same small stack: Rayon's threads
            // must not need more than the default either.
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .stack_size(2 * 1024 * 1024)
                .build();
            match pool {
                Ok(pool) => pool.install(|| parse_tree(&source, &options)),
                Err(err) => panic!("{err}"),
            }
        });
    match handle.map(|h| h.join()) {
        Ok(Ok(graph)) => graph,
        _ => panic!("parse thread failed"),
    }
}

/// Statements that fit the native-drop size of `ruff::dismantle` but nest
/// as deeply as a kilobyte allows, parsed and dropped on a thread with a
/// quarter of the stack the parser's threads have: if that bound were wrong
/// this test would die with a stack overflow. (The pre-scan refuses most of
/// these files now, but chains such as `a+a+...` and `a.b.c`, which it lets
/// through, build trees as deep, so Ruff is called directly.)
#[test]
fn s5_deepest_small_statements_drop_on_a_small_stack() {
    let fit = |head: &str, open: &str, leaf: &str, close: &str| {
        let room = 1000 - head.len() - leaf.len();
        let n = room / (open.len() + close.len());
        format!("{head}{}{leaf}{}\n", open.repeat(n), close.repeat(n))
    };
    let source = [
        fit("x = ", "-", "y", ""),
        fit("x = ", "not ", "y", ""),
        fit("x = ", "[", "", "]"),
        fit("x = ", "f(", "0", ")"),
        fit("x = ", "a[", "0", "]"),
        fit("x = ", "lambda:", "0", ""),
        fit("x = ", "a+", "a", ""),
        fit("x = ", "(a,", "", ")"),
        fit("x = a", "", "", ".b"),
        fit("x = ", "{1:", "1", "}"),
    ]
    .concat();
    assert!(source.lines().all(|l| l.len() <= 1000));
    let handle = std::thread::Builder::new()
        .stack_size(512 * 1024)
        .spawn(move || ruff::parse_only(&source))
        .expect("spawn");
    assert_eq!(handle.join().expect("no overflow"), 0);
}

/// Deep nesting is skipped file by file, before Ruff's parser (whose memory
/// grows with the depth) sees it; long chains, which its parser reads in a
/// loop, are parsed. See also `tests/hostile_nesting.rs`.
#[test]
fn s5_hundred_thousand_nested_parentheses() {
    let depth = 100_000;
    let deep = vec![
        (
            "parens.py",
            format!(
                "from regs import R\nx = {}1{}\n@R.register\ndef skipped(): pass\n",
                "(".repeat(depth),
                ")".repeat(depth)
            ),
        ),
        (
            "lists.py",
            format!("y = {}{}\n", "[".repeat(depth), "]".repeat(depth)),
        ),
        (
            "calls.py",
            format!("z = {}0{}\n", "f(".repeat(depth), ")".repeat(depth)),
        ),
        ("unclosed.py", format!("w = {}\n", "(".repeat(depth))),
        ("unary.py", format!("u = {}1\n", "-".repeat(depth))),
        (
            "fstring.py",
            format!("v = f\"{}\"\n", "{x:{y:".repeat(2_000)),
        ),
    ];
    let deep_paths: Vec<String> = deep.iter().map(|(p, _)| (*p).to_owned()).collect();
    let mut files: Vec<(String, String)> =
        deep.into_iter().map(|(p, s)| (p.to_owned(), s)).collect();
    files.extend([
        (
            "regs.py".to_owned(),
            "from spice import Registry\nR = Registry('r')\n".to_owned(),
        ),
        (
            "sum.py".to_owned(),
            format!(
                "from regs import R\ns = 1{}\n@R.register\ndef after(): pass\n",
                "+1".repeat(depth)
            ),
        ),
        (
            "attrs.py".to_owned(),
            format!("a = b{}\n", ".c".repeat(depth)),
        ),
    ]);
    let g = parse_on_small_stack(files, 64 * 1024 * 1024);
    assert_eq!(names(&g), pairs(&[("regs.R", "after")]));
    let skipped: Vec<&str> = g
        .diagnostics
        .iter()
        .filter(|d| d.message.contains("nests deeper than 256 levels"))
        .map(|d| d.file.as_str())
        .collect();
    let mut expected: Vec<&str> = deep_paths.iter().map(String::as_str).collect();
    expected.sort();
    assert_eq!(skipped, expected);
    assert_eq!(g.diagnostics.len(), expected.len(), "{:#?}", g.diagnostics);
}

#[test]
fn s5_twenty_megabyte_file() {
    let mut big = String::from("from spice import Registry\nR = Registry('r')\n");
    let mut i = 0;
    while big.len() < 20 * 1024 * 1024 {
        big.push_str(&format!("@R.register\ndef f{i}(a, b):\n    \"\"\"Doc {i}.\"\"\"\n    return [a, b, {{'k': (a + b) * {i}}}]\n\n"));
        i += 1;
    }
    // Over the default limit: skipped without being read.
    let g = parse(&[("big.py", &big)]);
    assert!(g.entries.is_empty());
    assert!(g.diagnostics[0].message.contains("limit"));
    // With a limit that admits it: parsed in full.
    let g = parse_on_small_stack(vec![("big.py".to_owned(), big)], 32 * 1024 * 1024);
    assert_eq!(g.entries.len(), i);
    assert_eq!(entry(&g, "f0").line, 4);
}

#[test]
fn s5_output_is_deterministic() -> std::io::Result<()> {
    let files = [
        ("shop/__init__.py", "from .registries import pipelines\n"),
        ("shop/registries.py", REGS),
        (
            "shop/jobs.py",
            "from shop import pipelines\n@pipelines.register(depends_on=['b', 'ghost'])\ndef a(b, c): pass\n@pipelines.register\ndef b(): pass\n@pipelines.register\ndef c(): pass\n",
        ),
        ("shop/broken.py", "def x(:\n"),
    ];
    let dir = tempfile::tempdir()?;
    for (path, text) in files {
        let full = dir.path().join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(full, text)?;
    }
    let run = |threads: usize| -> String {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build();
        match pool {
            Ok(pool) => pool.install(|| match parse_dir(dir.path()) {
                Ok(g) => to_json(&g),
                Err(err) => err.to_string(),
            }),
            Err(err) => err.to_string(),
        }
    };
    let first = run(1);
    assert_eq!(first, run(4));
    assert_eq!(first, run(2));
    assert_eq!(first, to_json(&parse(&files)), "memory and disk agree");
    Ok(())
}

// ---------------------------------------------------------------- §6

#[test]
fn s6_arrays_are_sorted() {
    let g = parse(&[
        ("z.py", "from spice import Registry\nB = Registry('b')\nA = Registry('a')\n@B.register('y')\ndef f2(): pass\n@A.register('z', depends_on=['x'])\ndef f3(): pass\n"),
        ("a.py", "from z import A, B\n@B.register('y')\ndef f1(): pass\n@A.register('x')\ndef f4(): pass\ndef broken(:\n"),
    ]);
    let ids: Vec<_> = g.registries.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, vec!["z.A", "z.B"]);
    let entries: Vec<_> = g
        .entries
        .iter()
        .map(|e| (e.registry.as_str(), e.name.as_str(), e.file.as_str()))
        .collect();
    assert_eq!(
        entries,
        vec![
            ("z.A", "x", "a.py"),
            ("z.A", "z", "z.py"),
            ("z.B", "y", "a.py"),
            ("z.B", "y", "z.py")
        ]
    );
    let mut sorted = g.diagnostics.clone();
    sorted.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    assert_eq!(sorted, g.diagnostics);
}

#[test]
fn progress_callback_counts_every_file() {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let options = ParseOptions {
        progress: Some(Arc::new(move |done, total| {
            if let Ok(mut v) = sink.lock() {
                v.push((done, total));
            }
        })),
        ..ParseOptions::default()
    };
    let source = MemorySource::new()
        .with("a.py", "")
        .with("b.py", "")
        .with("c.txt", "")
        .with("d.py", "");
    parse_tree(&source, &options);
    let mut calls = seen.lock().map(|v| v.clone()).unwrap_or_default();
    calls.sort();
    assert_eq!(calls, vec![(1, 3), (2, 3), (3, 3)]);
}

#[test]
fn s5_hostile_name_tables_stay_bounded() {
    let mut src = String::from("from spice import Registry\n");
    for i in 0..50_000 {
        src.push_str(&format!("from m{i} import Q\n"));
    }
    src.push_str("R = Registry('r')\n");
    src.push_str(&format!("import {} as deep\n", vec!["a"; 10_000].join(".")));
    for i in 0..2_000 {
        src.push_str(&format!(
            "@Q.register\n@deep.x.register\n@R.register\ndef f{i}(): pass\n"
        ));
    }
    let names: Vec<String> = (0..5_000).map(|i| format!("'n{i}'")).collect();
    let deps: Vec<String> = (0..5_000).map(|i| format!("'d{i}'")).collect();
    src.push_str(&format!(
        "@R.register_module(name=[{}], depends_on=[{}])\nclass Many: pass\n",
        names.join(", "),
        deps.join(", ")
    ));
    let start = std::time::Instant::now();
    let g = parse(&[("hostile.py", &src)]);
    let elapsed = start.elapsed();
    // Every `from mN import Q` is external: resolving `Q` examines a bounded
    // number of its 50,000 bindings, not all of them, for each of the 2,000 uses.
    assert!(elapsed.as_secs() < 60, "took {elapsed:?}");
    assert_eq!(g.entries.len(), 2_000 + 1_000);
    assert!(g.edges.len() <= 10_000 + 1, "{}", g.edges.len());
    assert!(g
        .diagnostics
        .iter()
        .any(|d| d.message.contains("only the first 1000 are kept")));
    assert!(g
        .diagnostics
        .iter()
        .any(|d| d.message.contains("more than 10000 edges")));
}

#[test]
fn s4_decorator_registry_ignores_a_non_string_first_argument() {
    let g = parse(&[
        ("spice.toml", "decorator_registries = { task = \"tasks\" }\n"),
        (
            "jobs.py",
            "from proj.celery import app\nRETRIES = 3\n@app.task(RETRIES)\ndef send(): pass\n@app.task(name=NAME)\ndef other(): pass\n",
        ),
    ]);
    assert_eq!(names(&g), pairs(&[("tasks", "other"), ("tasks", "send")]));
    let warnings: Vec<_> = g.diagnostics.iter().map(|d| d.line).collect();
    assert_eq!(
        warnings,
        vec![6],
        "only the non-literal name= is worth a warning"
    );
}

#[test]
fn s6_line_numbers_with_a_bom_and_crlf_line_endings() {
    let g = parse(&[(
        "m.py",
        "\u{feff}from spice import Registry\r\n\r\nR = Registry('r')\r\n@R.register\r\ndef f():\r\n    '''Doc.\r\n    more'''\r\n",
    )]);
    assert_eq!(g.registries[0].line, 3);
    let e = entry(&g, "f");
    assert_eq!((e.line, e.doc.as_deref()), (5, Some("Doc.")));
    no_warnings(&g);
}

#[test]
fn s6_line_numbers_with_lone_cr_joined_lines_and_an_earlier_syntax_error() {
    // Lone `\r` ends a line for Python; `def \` + newline puts the name on
    // the next line but the entry is reported at the keyword; the syntax
    // error near the end is reported before any statement's line is asked.
    let g = parse(&[(
        "m.py",
        "from spice import Registry\rR = Registry('r')\r\n\n@R.register\nclass \\\n  C: pass\n@R.register\nasync \\\r\ndef \\\n f(): pass\nx = (\n",
    )]);
    assert_eq!(g.registries[0].line, 2);
    assert_eq!(entry(&g, "C").line, 5);
    assert_eq!(entry(&g, "f").line, 9);
    let errors: Vec<_> = g
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| d.line)
        .collect();
    assert!(errors.iter().all(|&l| l >= 11), "{errors:?}");
    assert!(!errors.is_empty());
}

#[test]
fn resolution_through_function_local_imports_and_aliases() {
    let g = parse(&[
        ("pkg/regs.py", "from spice import Registry\nR = Registry('r')\n"),
        (
            "pkg/plugins.py",
            "def setup(app):\n    from pkg.regs import R as local\n    alias = local\n    x = app.settings\n    def handler(): pass\n    alias.register('handler', handler)\n    @local.register\n    def other(): pass\n",
        ),
    ]);
    let got: Vec<_> = g
        .entries
        .iter()
        .map(|e| (e.name.as_str(), e.target.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("handler", "pkg.plugins.setup.<locals>.handler"),
            ("other", "pkg.plugins.setup.<locals>.other"),
        ]
    );
}

#[test]
fn prepared_files_give_the_same_graph_as_a_plain_parse() {
    let files: &[(&str, &[u8])] = &[
        (
            "spice.toml",
            b"exclude = [\"legacy\"]\nregistry_constructors = [\"make\"]\n",
        ),
        ("regs.py", b"from spice import Registry\nR = Registry('r')\nM = make('m')\n"),
        ("a.py", b"from regs import R\n@R.register\ndef a(): pass\n"),
        ("b.py", b"from regs import R, M\n@R.register(requires=['a'])\ndef b(a): pass\n@M.register\nclass C: pass\n"),
        ("legacy/old.py", b"from regs import R\n@R.register\ndef old(): pass\n"),
        ("broken.py", b"def oops(:\n"),
        ("blob.py", b"x = 1\0"),
        ("big.py", b"# a comment longer than the limit of this test ................................................................................................................................................................................................................"),
    ];
    let source: MemorySource = files.iter().map(|&(p, c)| (p, c.to_vec())).collect();
    let options = ParseOptions {
        max_file_size: 200,
        ..ParseOptions::default()
    };
    let plain = to_json(&parse_tree(&source, &options));
    // Every Python file prepared, including one the configuration excludes,
    // plus one the tree does not hold (it must not appear).
    let mut prepared: HashMap<String, PreparedFile> = files
        .iter()
        .filter(|(p, _)| p.ends_with(".py"))
        .map(|&(p, c)| (p.to_owned(), prepare_file(p, c, &options)))
        .collect();
    prepared.insert(
        "ghost.py".into(),
        prepare_file(
            "ghost.py",
            b"from regs import R\n@R.register\ndef ghost(): pass\n",
            &options,
        ),
    );
    let all = to_json(&parse_tree_prepared(&source, &options, prepared));
    assert_eq!(plain, all);
    assert!(plain.contains("\"b\"") && !plain.contains("ghost") && !plain.contains("\"old\""));
    // Some prepared, the rest read from the tree.
    let some: HashMap<String, PreparedFile> = [("a.py", files[2].1)]
        .into_iter()
        .map(|(p, c)| (p.to_owned(), prepare_file(p, c, &options)))
        .collect();
    assert_eq!(
        plain,
        to_json(&parse_tree_prepared(&source, &options, some))
    );
}

/// Facts kept from an earlier parse, by path and content, as the sync
/// engine keeps them: only what changed is extracted, and the graph is the
/// one a full parse gives.
mod kept_facts {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> MemorySource {
        files.iter().copied().collect()
    }

    /// The facts of `old` that still describe `new`: same path, same
    /// content; each one stored and read back as the engine does.
    fn reusable(
        old: &[(&str, &str)],
        kept: &[(PreparedFile, bool)],
        new: &[(&str, &str)],
    ) -> HashMap<String, PreparedFile> {
        kept.iter()
            .filter(|(facts, _)| {
                let before = old.iter().find(|(p, _)| *p == facts.path());
                let after = new.iter().find(|(p, _)| *p == facts.path());
                matches!((before, after), (Some(b), Some(a)) if b.1 == a.1)
            })
            .map(|(facts, _)| {
                let stored = facts.to_bytes();
                let back = PreparedFile::from_bytes(&stored).expect("facts read back");
                (facts.path().to_owned(), back)
            })
            .collect()
    }

    const REGS: &str = "from spice import Registry\nR = Registry('r')\nALIAS = R\n";
    const A: &str = "from pkg.regs import R\n@R.register('a')\ndef a():\n    '''Doc of a.'''\n";
    const B: &str =
        "from pkg.regs import ALIAS\n@ALIAS.register('b', depends_on=['a'])\ndef b(a): pass\n";
    const C: &str = "from pkg.regs import R\nfrom pkg.a import a\nR.register('c', func=a)\n";

    fn before() -> Vec<(&'static str, &'static str)> {
        vec![
            ("pkg/__init__.py", ""),
            ("pkg/regs.py", REGS),
            ("pkg/a.py", A),
            ("pkg/b.py", B),
            ("pkg/c.py", C),
            (
                "pkg/unrelated.py",
                "import os\n\ndef helper(x):\n    return os.path.join(x)\n",
            ),
        ]
    }

    fn check(old: &[(&str, &str)], new: &[(&str, &str)], extracted: usize) {
        let options = ParseOptions::default();
        let first = parse_tree_keeping(&tree(old), &options, HashMap::new());
        assert!(first.facts.iter().all(|(_, made)| *made));
        let given = reusable(old, &first.facts, new);
        let again = parse_tree_keeping(&tree(new), &options, given);
        let full = parse_tree(&tree(new), &options);
        assert_eq!(again.graph, full, "kept facts changed the graph");
        let made: Vec<&str> = again
            .facts
            .iter()
            .filter(|(_, made)| *made)
            .map(|(f, _)| f.path())
            .collect();
        assert_eq!(made.len(), extracted, "extracted again: {made:?}");
    }

    #[test]
    fn an_edit_is_the_only_file_extracted_again() {
        let mut new = before();
        new[3].1 =
            "from pkg.regs import R\n@R.register('b2', depends_on=['a', 'c'])\ndef b(a): pass\n";
        check(&before(), &new, 1);
        // The graph did change: b2 replaces b, with one more edge.
        let graph = parse(&new);
        assert!(names(&graph).contains(&("pkg.regs.R".into(), "b2".into())));
    }

    #[test]
    fn a_rename_and_a_delete_extract_only_the_new_path() {
        let mut new = before();
        new.retain(|(p, _)| *p != "pkg/c.py" && *p != "pkg/a.py");
        new.push(("pkg/moved.py", A));
        check(&before(), &new, 1);
    }

    #[test]
    fn a_configuration_change_keeps_every_file_s_facts() {
        // spice.toml selects files and changes the registry rules, but the
        // per-file phase does not read it: the facts stay, the resolution
        // runs again over all of them.
        let mut new = before();
        new.push(("spice.toml", "exclude = [\"pkg/c.py\"]\n"));
        check(&before(), &new, 0);
        assert!(!names(&parse(&new)).contains(&("pkg.regs.R".into(), "c".into())));
    }

    #[test]
    fn facts_made_for_another_path_are_not_used() {
        let options = ParseOptions::default();
        let old = before();
        let first = parse_tree_keeping(&tree(&old), &options, HashMap::new());
        let a_facts = first
            .facts
            .iter()
            .find(|(f, _)| f.path() == "pkg/a.py")
            .map(|(f, _)| f.clone())
            .expect("facts of pkg/a.py");
        let mut new = before();
        new.push(("pkg/other.py", A));
        let given = HashMap::from([("pkg/other.py".to_owned(), a_facts)]);
        let again = parse_tree_keeping(&tree(&new), &options, given);
        assert_eq!(again.graph, parse_tree(&tree(&new), &options));
        assert!(again
            .facts
            .iter()
            .any(|(f, made)| f.path() == "pkg/other.py" && *made));
    }

    #[test]
    fn damaged_facts_are_an_error_not_a_panic() {
        assert!(PreparedFile::from_bytes(b"").is_err());
        assert!(PreparedFile::from_bytes(&[0xff; 64]).is_err());
        let facts = prepare_file("pkg/a.py", A.as_bytes(), &ParseOptions::default());
        let mut bytes = facts.to_bytes();
        bytes.truncate(bytes.len() / 2);
        assert!(PreparedFile::from_bytes(&bytes).is_err());
    }

    #[test]
    fn the_facts_version_follows_the_limits() {
        let default = ParseOptions::default();
        let smaller = ParseOptions {
            max_file_size: 1024,
            ..ParseOptions::default()
        };
        assert_eq!(facts_version(&default), facts_version(&default));
        assert_ne!(facts_version(&default), facts_version(&smaller));
    }
}
