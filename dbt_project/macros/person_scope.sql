{#- Person-scoped incremental gold (issue 16).

    The models keyed by person (stg_attribute_candidates, int_profile_records,
    resolved_attributes, customer_profile v1/v2, consent_log, attribute_conflicts) are
    `incremental`. c360
    decides per build (c360_assets/gold/scope.py):
      * full: `dbt build --full-refresh`, every model rebuilt whole;
      * scoped: c360 writes the persons to re-resolve into the table
        `c360_gold_scope` (customer_id) of the DuckDB file and sets the environment
        variable C360_GOLD_SCOPED=true: each model deletes those persons' rows
        (pre-hook) and inserts them again from silver, the rest of the table kept.
    An incremental run without it (a hand-run `dbt build`) deletes every row and inserts
    them all again: a rebuild, never a half-updated table. An environment variable, not
    a dbt var, so the vars stay the same between builds and dbt's partial parse holds;
    it is read only when a model runs incrementally (never while parsing).
-#}

{% macro c360_scoped() %}
  {{ return(is_incremental() and env_var('C360_GOLD_SCOPED', 'false') == 'true') }}
{% endmacro %}


{#- The persons being re-resolved. -#}
{% macro c360_scope_relation() %}
  {{- target.schema }}.c360_gold_scope
{%- endmacro %}


{#- A filter on a person id column: the scope's persons in a scoped build, else all. -#}
{% macro c360_in_scope(column) %}
  {%- if c360_scoped() -%}
  {{ column }} in (select customer_id from {{ c360_scope_relation() }})
  {%- else -%}
  true
  {%- endif -%}
{% endmacro %}


{#- Pre-hook of a person-scoped model: the rows about to be inserted again go first. -#}
{% macro c360_scope_delete() %}
  {%- if c360_scoped() -%}
  delete from {{ this }} where customer_id in (select customer_id from {{ c360_scope_relation() }})
  {%- elif is_incremental() -%}
  delete from {{ this }}
  {%- endif -%}
{% endmacro %}
