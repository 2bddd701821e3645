{{ config(materialized='view') }}
with source as (
    select * from {{ source('clever', 'courses') }}
),

final as (
    select
        district_id,
        id as course_id,
        nullif(trim(name), '') as name,
        nullif(trim(number), '') as number
    from source
)

select * from final
