"""The Dockerfile builder's pure half: everything up to, not including, running steps.

    parse_file(path)            -> ParseResult  (nodes; `.dump()` is BuildKit's test notation)
    parse_instructions(result)  -> Dockerfile   (typed instructions, meta ARGs, stages)
    plan_build(dockerfile, build_args=, target=, base_config=) -> BuildGraph
    graph.levels()              -> stages to build, in parallel groups
    stage_chain(stage, KeyInputs(context, stage_keys, image_ids)) -> each step with its cache key
    run_script(run_step, config.shell) -> argv (+ files) of a RUN
    IgnoreMatcher.for_context(ctx, dockerfile); BuildContext(ctx, ignore, StatCache)

Modules: `dockerfile/` (parser, lexer, typed instructions), `expand` (what substitutes where),
`graph` (stages, steps, scoping), `imageconfig`, `context` (sources, digests), `ignore`,
`cachekey`, `runscript`, `platform`. No I/O except reading the Dockerfile and the context.
"""
