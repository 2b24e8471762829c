-- Share of persons with each attribute, by winning source, and overall.
with persons as (

    select count(*) as profiles from {{ ref('customer_profile', v=2) }}

),

by_source as (

    select attribute, source_system as winning_source, count(*) as persons
    from {{ ref('resolved_attributes') }}
    group by attribute, source_system

)

select
    by_source.attribute,
    by_source.winning_source,
    by_source.persons,
    by_source.persons / cast(persons.profiles as double) as share_of_persons,
    sum(by_source.persons) over (partition by by_source.attribute)
        / cast(persons.profiles as double) as attribute_share
from by_source
cross join persons
