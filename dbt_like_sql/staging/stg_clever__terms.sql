{{ config(materialized='view') }}
with source as (
    select * from {{ source('clever', 'terms') }}
),

final as (
    select
        district_id,
        id as term_id,
        nullif(trim(name), '') as name,
        nullif(trim(start_date), '') as start_date,
        nullif(trim(end_date), '') as end_date
    from source
)

select * from final
