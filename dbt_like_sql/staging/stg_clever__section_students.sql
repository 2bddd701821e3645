with source as (
    select * from {{ source('clever', 'section_students') }}
),

final as (
    select
        district_id,
        section_id,
        student_id
    from source
)

select * from final
