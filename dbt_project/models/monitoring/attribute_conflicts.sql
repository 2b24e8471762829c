-- Persons and attributes whose current values disagree: more than one distinct current
-- value among the person's records, with the sources holding them and the winner.
-- Person-scoped like the models it reads (macros/person_scope.sql).
{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='fail',
          pre_hook="{{ c360_scope_delete() }}") }}
with contested as (

    select customer_id, attribute, competing_values, source_system as winning_source, rule
    from {{ ref('resolved_attributes') }}
    where competing_values > 1
        and {{ c360_in_scope('customer_id') }}

),

holders as (

    select
        candidates.customer_id,
        candidates.attribute,
        count(distinct candidates.source_system) as source_count,
        {{ c360_distinct_list('candidates.source_system') }} as sources
    from {{ ref('stg_attribute_candidates') }} as candidates
    inner join contested
        on contested.customer_id = candidates.customer_id
        and contested.attribute = candidates.attribute
    group by candidates.customer_id, candidates.attribute

)

select
    contested.customer_id,
    contested.attribute,
    contested.competing_values as distinct_values,
    holders.source_count,
    holders.sources,
    contested.winning_source,
    contested.rule
from contested
inner join holders
    on holders.customer_id = contested.customer_id
    and holders.attribute = contested.attribute
