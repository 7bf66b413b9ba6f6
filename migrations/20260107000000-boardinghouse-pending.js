// @ts-check
// The library's own shared migration: the pool of pending (spare) schemas, cloned from the template
// ahead of time so that createSchema claims one (a rename) instead of cloning (option
// `pendingSchemas`, plugin/pending.ts). One row per spare: its internal name (never a valid tenant
// name: it starts with "_"), the template version it was cloned at (a spare of another version is
// never handed out), a fingerprint of its catalog taken when it was cloned (a spare changed by hand
// since is discarded at claim), and the functions whose pinned search_path names it, cut where it
// names it (the claim sets them again with the new name).
//
// The fingerprint and the claim are PL/pgSQL functions: a backend plans their queries once and keeps
// the plans (an inline query of the same text was planned again at every claim: ~4 ms of planning).
// Changing either takes a new migration replacing it; a new fingerprint also bumps
// FINGERPRINT_FORMAT in plugin/pending.ts (spares fingerprinted the old way become stale).

/** @param {{ context: { queryInterface: import('sequelize').QueryInterface } }} params */
export async function up ({ context }) {
  await context.queryInterface.sequelize.query(`
    CREATE TABLE public.boardinghouse_pending (
      schema_name varchar(63) PRIMARY KEY
        CONSTRAINT boardinghouse_pending_name_internal CHECK (schema_name ~ '^__pending_[0-9a-f]{16}__$'),
      template_version text NOT NULL,
      fingerprint text NOT NULL,
      rewrites jsonb NOT NULL DEFAULT '[]',
      created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX boardinghouse_pending_version_idx ON public.boardinghouse_pending (template_version, created_at);

    -- Every catalog row of the schema's objects by catalog, OID and xmin (DDL of any kind gives a row a
    -- new xmin; VACUUM and ANALYZE update theirs in place and do not), the main-fork size of its tables
    -- and materialized views (0 until a row is written) and its sequences' state (NULL until nextval).
    -- NULL for no schema. The objects are found by index only (pg_class, pg_type, pg_proc and
    -- pg_constraint have no index by namespace, and grow with every tenant): what depends on the
    -- namespace in pg_depend (relations, types, routines, statistics: anything created in it), then
    -- what hangs on those relations and types (indexes, columns, defaults, constraints, triggers,
    -- policies, rules, row types). enable_seqscan is off for its queries: every one has an index, and
    -- a catalog's stale statistics (pg_trigger after a thousand tenants were created) made the planner
    -- scan the whole catalog instead (15 ms instead of 0.5).
    CREATE FUNCTION public.boardinghouse_pending_fingerprint(ns oid) RETURNS text
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog SET enable_seqscan = off AS $fn$
    DECLARE
      tabs oid[];
      rels oid[];
      types oid[];
      procs oid[];
      stats oid[];
      cons oid[];
      trgs oid[];
      pols oid[];
      rules oid[];
    BEGIN
      IF ns IS NULL OR NOT EXISTS (SELECT 1 FROM pg_namespace n WHERE n.oid = ns) THEN RETURN NULL; END IF;
      tabs := ARRAY(SELECT d.objid FROM pg_depend d WHERE d.refclassid = 'pg_namespace'::regclass AND d.refobjid = ns AND d.classid = 'pg_class'::regclass);
      rels := tabs || ARRAY(SELECT i.indexrelid FROM pg_index i WHERE i.indrelid = ANY (tabs));
      types := ARRAY(SELECT d.objid FROM pg_depend d WHERE d.refclassid = 'pg_namespace'::regclass AND d.refobjid = ns AND d.classid = 'pg_type'::regclass)
        || ARRAY(SELECT c.reltype FROM pg_class c WHERE c.oid = ANY (tabs) AND c.reltype <> 0);
      procs := ARRAY(SELECT d.objid FROM pg_depend d WHERE d.refclassid = 'pg_namespace'::regclass AND d.refobjid = ns AND d.classid = 'pg_proc'::regclass);
      stats := ARRAY(SELECT d.objid FROM pg_depend d WHERE d.refclassid = 'pg_namespace'::regclass AND d.refobjid = ns AND d.classid = 'pg_statistic_ext'::regclass);
      cons := ARRAY(SELECT k.oid FROM pg_constraint k WHERE k.conrelid = ANY (tabs)) || ARRAY(SELECT k.oid FROM pg_constraint k WHERE k.contypid = ANY (types));
      trgs := ARRAY(SELECT g.oid FROM pg_trigger g WHERE g.tgrelid = ANY (tabs));
      pols := ARRAY(SELECT o.oid FROM pg_policy o WHERE o.polrelid = ANY (tabs));
      rules := ARRAY(SELECT r.oid FROM pg_rewrite r WHERE r.ev_class = ANY (tabs));
      RETURN (SELECT md5(string_agg(f.r, ',' ORDER BY f.r)) FROM (
        SELECT 'n' || n.oid || ':' || n.xmin AS r FROM pg_namespace n WHERE n.oid = ns
        UNION ALL SELECT 'N' || d.classid || '.' || d.objid || '.' || d.objsubid || d.deptype::text FROM pg_depend d
          WHERE d.refclassid = 'pg_namespace'::regclass AND d.refobjid = ns
        UNION ALL SELECT 'c' || c.oid || ':' || c.xmin FROM pg_class c WHERE c.oid = ANY (rels)
        UNION ALL SELECT 'a' || a.attrelid || '.' || a.attnum || ':' || a.xmin FROM pg_attribute a WHERE a.attrelid = ANY (rels)
        UNION ALL SELECT 'd' || d.oid || ':' || d.xmin FROM pg_attrdef d WHERE d.adrelid = ANY (tabs)
        UNION ALL SELECT 'i' || i.indexrelid || ':' || i.xmin FROM pg_index i WHERE i.indrelid = ANY (tabs)
        UNION ALL SELECT 'q' || q.seqrelid || ':' || q.xmin FROM pg_sequence q WHERE q.seqrelid = ANY (tabs)
        UNION ALL SELECT 't' || t.oid || ':' || t.xmin FROM pg_type t WHERE t.oid = ANY (types)
        UNION ALL SELECT 'e' || e.oid || ':' || e.xmin FROM pg_enum e WHERE e.enumtypid = ANY (types)
        UNION ALL SELECT 'p' || p.oid || ':' || p.xmin FROM pg_proc p WHERE p.oid = ANY (procs)
        UNION ALL SELECT 'k' || k.oid || ':' || k.xmin FROM pg_constraint k WHERE k.oid = ANY (cons)
        UNION ALL SELECT 'g' || g.oid || ':' || g.xmin FROM pg_trigger g WHERE g.oid = ANY (trgs)
        UNION ALL SELECT 'o' || o.oid || ':' || o.xmin FROM pg_policy o WHERE o.oid = ANY (pols)
        UNION ALL SELECT 'r' || r.oid || ':' || r.xmin FROM pg_rewrite r WHERE r.oid = ANY (rules)
        UNION ALL SELECT 's' || s.oid || ':' || s.xmin FROM pg_statistic_ext s WHERE s.oid = ANY (stats)
        UNION ALL SELECT 'm' || m.classoid || '.' || m.objoid || '.' || m.objsubid || ':' || m.xmin FROM pg_description m
          WHERE m.objoid = ANY (rels || types || procs || stats || cons || trgs || pols || rules)
        UNION ALL SELECT 'x' || x.objid || '.' || x.objsubid || '>' || x.refclassid || '.' || x.refobjid || '.' || x.refobjsubid || x.deptype::text
          FROM pg_depend x WHERE x.classid = 'pg_class'::regclass AND x.objid = ANY (rels)
        UNION ALL SELECT 'D' || c.oid || ':' || pg_relation_size(c.oid) FROM pg_class c WHERE c.oid = ANY (tabs) AND c.relkind IN ('r', 'm')
        UNION ALL SELECT 'S' || c.oid || ':' || coalesce(pg_sequence_last_value(c.oid)::text, '-') FROM pg_class c WHERE c.oid = ANY (tabs) AND c.relkind = 'S'
      ) f);
    END
    $fn$;

    -- Claims a spare of template version p_version as schema p_target, in the caller's transaction:
    -- the oldest whose row no other transaction holds (FOR UPDATE SKIP LOCKED: concurrent claims take
    -- different spares, or none); one whose fingerprint differs (or whose schema is gone) is dropped
    -- and the next examined, p_examine at most. The claimed one is renamed, its pinned search_paths
    -- set again with the new name, its row deleted. Returns the spare's former name (NULL: none) and
    -- the discarded ones, and sets boardinghouse.claimed (the name, or '') for the transaction.
    CREATE FUNCTION public.boardinghouse_claim_pending(p_target text, p_version text, p_examine int)
    RETURNS TABLE (claimed text, discarded text[])
    LANGUAGE plpgsql SET search_path = pg_catalog AS $fn$
    DECLARE
      v_spare record;
      v_rw record;
      v_discarded text[] := '{}';
    BEGIN
      PERFORM set_config('boardinghouse.claimed', '', true);
      FOR v_i IN 1..p_examine LOOP
        SELECT p.schema_name::text AS schema_name, p.fingerprint, p.rewrites INTO v_spare FROM public.boardinghouse_pending p
          WHERE p.template_version = p_version ORDER BY p.created_at, p.schema_name LIMIT 1 FOR UPDATE SKIP LOCKED;
        EXIT WHEN NOT FOUND;
        IF public.boardinghouse_pending_fingerprint((SELECT n.oid FROM pg_namespace n WHERE n.nspname = v_spare.schema_name))
             IS DISTINCT FROM v_spare.fingerprint THEN
          EXECUTE format('DROP SCHEMA IF EXISTS %I CASCADE', v_spare.schema_name);
          DELETE FROM public.boardinghouse_pending WHERE schema_name = v_spare.schema_name;
          v_discarded := v_discarded || v_spare.schema_name;
          CONTINUE;
        END IF;
        EXECUTE format('ALTER SCHEMA %I RENAME TO %I', v_spare.schema_name, p_target);
        FOR v_rw IN SELECT (x ->> 'fn')::oid AS fn,
              ARRAY(SELECT e.piece FROM jsonb_array_elements_text(x -> 'pieces') WITH ORDINALITY AS e(piece, i) ORDER BY e.i) AS pieces
            FROM jsonb_array_elements(v_spare.rewrites) AS x LOOP
          EXECUTE 'ALTER ROUTINE ' || v_rw.fn::regprocedure::text || ' SET search_path TO ' || array_to_string(v_rw.pieces, quote_ident(p_target));
        END LOOP;
        DELETE FROM public.boardinghouse_pending WHERE schema_name = v_spare.schema_name;
        PERFORM set_config('boardinghouse.claimed', v_spare.schema_name, true);
        RETURN QUERY SELECT v_spare.schema_name, v_discarded;
        RETURN;
      END LOOP;
      RETURN QUERY SELECT NULL::text, v_discarded;
    END
    $fn$;
  `)
}

/** @param {{ context: { queryInterface: import('sequelize').QueryInterface } }} params */
export async function down ({ context }) {
  // the spares go with their table: nothing else knows them
  await context.queryInterface.sequelize.query(`
    DO $bh$ DECLARE r record; BEGIN
      IF to_regclass('public.boardinghouse_pending') IS NOT NULL THEN
        FOR r IN SELECT schema_name FROM public.boardinghouse_pending LOOP
          EXECUTE format('DROP SCHEMA IF EXISTS %I CASCADE', r.schema_name);
        END LOOP;
      END IF;
    END $bh$;
    DROP FUNCTION IF EXISTS public.boardinghouse_claim_pending(text, text, int);
    DROP FUNCTION IF EXISTS public.boardinghouse_pending_fingerprint(oid);
    DROP TABLE IF EXISTS public.boardinghouse_pending;
  `)
}
