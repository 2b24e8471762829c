-- Persons and attributes whose current values disagree: more than one distinct current
-- value among the person's records, with the sources holding them and the winner.
with disagreements as (

    select
        customer_id,
        attribute,
        count(distinct value) as distinct_values,
        count(distinct source_system) as source_count,
        {{ c360_distinct_list('source_system') }} as sources
    from {{ ref('stg_attribute_candidates') }}
    group by customer_id, attribute
    having count(distinct value) > 1

)

select
    disagreements.*,
    resolved.source_system as winning_source,
    resolved.rule
from disagreements
inner join {{ ref('resolved_attributes') }} as resolved
    on resolved.customer_id = disagreements.customer_id
    and resolved.attribute = disagreements.attribute
