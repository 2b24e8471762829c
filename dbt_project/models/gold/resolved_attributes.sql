-- One row per person and attribute: the winning current value (resolve_winner), its
-- source record, field time and confidence, the rule that chose it, whether it is a
-- placeholder (it won only because nothing else exists), and how many distinct values
-- and records competed.
{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='fail',
          pre_hook="{{ c360_scope_delete() }}") }}

{#- The scope's candidates as a derived table, inlined where the macro reads them (a CTE
    read twice is materialised by DuckDB: 15 M rows copied in a full build). -#}
{%- set candidates -%}
(select * from {{ ref('stg_attribute_candidates') }} where {{ c360_in_scope('customer_id') }})
{%- endset %}

with ranked as (

    {{ resolve_winner(candidates) }}

),

-- Distinct values, counted only where more than one record competed (most partitions
-- hold one candidate).
competition as (

    select customer_id, attribute, count(distinct value) as competing_values
    from ranked
    where candidate_records > 1
    group by customer_id, attribute

)

select
    ranked.customer_id,
    ranked.attribute,
    ranked.value,
    ranked.source_system,
    ranked.record_node_id,
    ranked.field_time,
    ranked.confidence,
    ranked.rule,
    ranked.is_placeholder,
    coalesce(competition.competing_values, 1) as competing_values,
    ranked.candidate_records
from ranked
left join competition
    on competition.customer_id = ranked.customer_id
    and competition.attribute = ranked.attribute
where ranked.candidate_rank = 1
